# The one warning policy of Aviary (STYLE.md), applied to every target the project builds: the top-level
# CMakeLists.txt calls aviary_apply_warnings() once every folder is added, so a new library, app, test, benchmark
# or fuzz target gets it without a line of its own. -Wall -Wextra for C++ (and for CUDA sources' host code);
# unused parameters are allowed (interfaces and callbacks name what they do not use). AVIARY_WERROR=ON turns
# every warning into an error.
function(aviary_warnings target)
  set(cxx -Wall -Wextra -Wno-unused-parameter)
  set(cuda -Xcompiler=-Wall)
  if(AVIARY_WERROR)
    list(APPEND cxx -Werror)
    list(APPEND cuda -Werror=all-warnings -Xcompiler=-Werror)
  endif()
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${cxx}>" "$<$<COMPILE_LANGUAGE:CUDA>:${cuda}>")
endfunction()

# aviary_warnings on every library and executable defined in `dir` and the folders below it.
function(aviary_apply_warnings dir)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      aviary_warnings(${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    aviary_apply_warnings("${sub}")
  endforeach()
endfunction()
