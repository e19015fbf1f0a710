# CPU backend suites beyond the unit tests (which tests/CMakeLists.txt globs):
# the ahead-of-time test builds objects with cpu_build, then compiles and links a C
# program against them with the system compiler, without LLVM or attnc libraries.
if(ATTNC_HAVE_LLVM)
  add_executable(cpu_aot_gen ${CMAKE_CURRENT_SOURCE_DIR}/cpu/aot_gen.c)
  target_link_libraries(cpu_aot_gen PRIVATE attnc_llvm)
  add_test(NAME cpu.aot
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cpu/aot_test.sh $<TARGET_FILE:cpu_aot_gen> ${CMAKE_C_COMPILER}
                   ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/cpu_aot)
endif()
