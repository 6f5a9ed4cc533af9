# aviary_add_test(NAME name SOURCES a.cpp ... LIBS lib... LABELS unit|golden|cuda|gui|slow|sanitize ...)
# `sanitize` marks the executables CI also builds and runs under the asan preset (tools/run.sh sanitize).
# One helper registers every GoogleTest executable with ctest and its labels. Tests named *_CUDA are
# GPU tests: they skip themselves at run time when no GPU is present, and carry the label `cuda`.
function(aviary_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/common/test_main.cpp)
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} aviary::core GTest::gtest)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${T_NAME} PRIVATE
    AVIARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    AVIARY_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures"
    AVIARY_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
