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
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60)
  # Labels: gtest_discover_tests' PROPERTIES flattens a list (LABELS unit golden became LABELS=unit plus a property
  # named "golden"), so a ctest include file that runs after the discovered tests sets the whole list on them.
  set(_labels_file "${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_labels.cmake")
  file(WRITE "${_labels_file}"
    "if(${T_NAME}_TESTS)\n  set_tests_properties(\${${T_NAME}_TESTS} PROPERTIES LABELS \"${T_LABELS}\")\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_labels_file}")
endfunction()
