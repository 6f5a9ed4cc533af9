# aviary_add_test(NAME name SOURCES a.cpp ... LIBS lib... LABELS unit|cuda|gui [sanitize])
# One helper registers every GoogleTest executable with ctest. LABELS are the labels of all its tests: the base label
# (unit, cuda or gui) and `sanitize` for the executables CI also builds and runs under the asan preset (tools/run.sh
# sanitize). The labels `golden` and `slow` are given per test by tests/test_labels.cmake. Tests named *_CUDA are GPU
# tests: they skip themselves at run time when no GPU is present (label `cuda`).
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
  # gtest_discover_tests' PROPERTIES flattens a list (LABELS "unit;golden" became LABELS=unit plus a property named
  # "golden"), so a ctest include file, read after the discovered tests, sets each test's whole label list.
  set(labels_file "${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_labels.cmake")
  file(WRITE "${labels_file}"
    "include(\"${PROJECT_SOURCE_DIR}/tests/test_labels.cmake\")\n"
    "aviary_label_tests(${T_NAME}_TESTS \"${T_LABELS}\")\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_file}")
endfunction()
