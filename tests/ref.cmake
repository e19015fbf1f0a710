# The reference interpreter against the independent numpy implementation: one test per
# kernel of every example spec (examples/*.attn) and of tests/ref/*.attn, named
# ref.KERNEL, plus ref.cli for the `attnc run` command's behaviour. Without Python or
# numpy these tests fail (loudly), they are never skipped.
file(GLOB REF_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*.attn ${CMAKE_SOURCE_DIR}/tests/ref/*.attn)
# Kernels whose shapes cross a 4096-key window: seconds normally, long under sanitizers.
set(REF_SLOW_KERNELS mistral_7b gemma2_9b_local)

if(NOT ATTNC_PYTHON)
  file(WRITE ${CMAKE_BINARY_DIR}/ref_no_python.cmake
       "message(FATAL_ERROR \"the ref.* tests need Python 3 with numpy; none was found when configuring\")\n")
endif()

foreach(spec ${REF_SPECS})
  file(READ ${spec} text)
  string(REGEX MATCHALL "(^|\n)[ \t]*kernel[ \t]+[A-Za-z_][A-Za-z0-9_]*" decls "${text}")
  foreach(decl ${decls})
    string(REGEX REPLACE ".*kernel[ \t]+" "" kname "${decl}")
    if(ATTNC_PYTHON)
      add_test(NAME ref.${kname}
               COMMAND ${ATTNC_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/check_example.py
                       --attnc $<TARGET_FILE:attnc> --file ${spec} --kernel ${kname})
    else()
      add_test(NAME ref.${kname} COMMAND ${CMAKE_COMMAND} -P ${CMAKE_BINARY_DIR}/ref_no_python.cmake)
    endif()
    if(kname IN_LIST REF_SLOW_KERNELS)
      set_tests_properties(ref.${kname} PROPERTIES LABELS "ref;slow")
    else()
      set_tests_properties(ref.${kname} PROPERTIES LABELS "ref")
    endif()
  endforeach()
endforeach()

if(ATTNC_PYTHON)
  add_test(NAME ref.cli COMMAND ${ATTNC_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/check_run_cli.py
                                --attnc $<TARGET_FILE:attnc> --root ${CMAKE_SOURCE_DIR})
else()
  add_test(NAME ref.cli COMMAND ${CMAKE_COMMAND} -P ${CMAKE_BINARY_DIR}/ref_no_python.cmake)
endif()
set_tests_properties(ref.cli PROPERTIES LABELS "ref")
