# Our own code builds warning-free with -Wall -Wextra; -Werror keeps it that way.
function(rf_target_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>)
endfunction()

# rf_module(NAME DIR [DEPS ...]): a static library made of every .cc file in DIR
# (non-recursive). Each engine module owns one directory; adding a file needs no
# CMake edit.
function(rf_module name)
  cmake_parse_arguments(M "" "DIR" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${M_DIR}/*.cc)
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_link_libraries(${name} PUBLIC ${M_DEPS})
    rf_target_warnings(${name})
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${M_DEPS})
  endif()
endfunction()
