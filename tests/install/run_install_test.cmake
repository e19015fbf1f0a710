# Driver of the install.package test (tests/install.cmake): every step must succeed.
cmake_minimum_required(VERSION 3.20)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  set(RUN_OUT "${out}" PARENT_SCOPE)
  set(RUN_ERR "${err}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# 1. install into a fresh prefix
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
set(libs lib/libattnc_core.a)
if(HAVE_LLVM)
  list(APPEND libs lib/libattnc_llvm.a)
endif()
foreach(f include/attnc/attnc.h include/attnc/tensor.h ${libs} bin/attnc
          lib/cmake/attnc/attncConfig.cmake lib/cmake/attnc/attncConfigVersion.cmake
          lib/cmake/attnc/attncKernels.cmake lib/cmake/attnc/attncTargets.cmake lib/pkgconfig/attnc.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()
run("installed attnc version" ${prefix}/bin/attnc version)
message(STATUS "installed: ${RUN_OUT}")

# 2. the example project, from a copy (step 4 edits its spec); it links a cpu kernel, so
#    it needs the CPU backend
if(NOT HAVE_LLVM)
  message(STATUS "NOT RUN: steps 2-4 (examples/cmake_project builds a cpu kernel, and this attnc has no LLVM)")
else()
  file(COPY ${SOURCE_DIR}/examples/cmake_project/ DESTINATION ${WORK}/src)
  set(cuda_args)
  execute_process(COMMAND ${prefix}/bin/attnc build --target cuda:sm_90a ${WORK}/src/attention.attn -o ${WORK}/probe
                  RESULT_VARIABLE probe_rc ERROR_VARIABLE probe_err OUTPUT_QUIET)
  if(probe_rc EQUAL 0)
    set(cuda_args -DEXAMPLE_CUDA_ARCH=sm_90a)
    message(STATUS "NVRTC works here: the example also builds cuda:sm_90a CUBINs")
  else()
    message(STATUS "NOT building CUBINs in the example: attnc build --target cuda:sm_90a failed here: ${probe_err}")
  endif()
  run("configure the example" ${CMAKE_COMMAND} -S ${WORK}/src -B ${WORK}/build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER} "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"
      ${cuda_args})
  run("build the example" ${CMAKE_COMMAND} --build ${WORK}/build)
  if(NOT RUN_OUT MATCHES "attnc build --target cpu: kernel local_window")
    message(FATAL_ERROR "the example build did not run attnc build:\n${RUN_OUT}")
  endif()
  run("run the example" ${WORK}/build/demo)
  message(STATUS "demo:\n${RUN_OUT}")
  if(NOT RUN_OUT MATCHES "PASS")
    message(FATAL_ERROR "the example did not pass:\n${RUN_OUT}")
  endif()
  set(obj ${WORK}/build/attnc_kernels/demo/cpu/local_window.o)
  file(SHA256 ${obj} before)

  # 3. nothing changed: a second build must not run the generator
  run("rebuild the unchanged example" ${CMAKE_COMMAND} --build ${WORK}/build)
  if(RUN_OUT MATCHES "attnc build --target")
    message(FATAL_ERROR "an unchanged spec was rebuilt:\n${RUN_OUT}")
  endif()

  # 4. edit the spec (another window and RoPE base): the kernel must be rebuilt, and the
  #    demo, which checks it against the JIT reference of the edited spec, must still pass
  file(READ ${WORK}/src/attention.attn spec)
  string(REPLACE "sliding_window(16)" "sliding_window(5)" spec "${spec}")
  string(REPLACE "base = 10000" "base = 500000" spec "${spec}")
  file(WRITE ${WORK}/src/attention.attn "${spec}")
  run("rebuild after the spec edit" ${CMAKE_COMMAND} --build ${WORK}/build)
  if(NOT RUN_OUT MATCHES "attnc build --target cpu: kernel local_window")
    message(FATAL_ERROR "editing the spec did not rebuild its kernel:\n${RUN_OUT}")
  endif()
  file(SHA256 ${obj} after)
  if(before STREQUAL after)
    message(FATAL_ERROR "the rebuilt object is identical to the old one")
  endif()
  run("run the rebuilt example" ${WORK}/build/demo)
  if(NOT RUN_OUT MATCHES "PASS")
    message(FATAL_ERROR "the rebuilt example did not pass:\n${RUN_OUT}")
  endif()

endif()

# 5. pkg-config: compile the JIT host program against the installed tree and run it
find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config is not installed; the test compiles a program with `pkg-config --cflags --libs attnc`")
endif()
run("pkg-config" ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/lib/pkgconfig ${PKG_CONFIG} --cflags --libs attnc)
string(STRIP "${RUN_OUT}" flags)
message(STATUS "pkg-config --cflags --libs attnc: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
run("compile jit_host.c with pkg-config's flags"
    ${C_COMPILER} -std=c11 -Wall -Wextra -Werror -O1 ${SOURCE_DIR}/examples/host/jit_host.c ${flags}
    -o ${WORK}/jit_host)
set(require)
if(HAVE_LLVM)
  set(require --require cpu)
endif()
run("run jit_host" ${WORK}/jit_host ${SOURCE_DIR}/examples/phi2.attn --seq 21 ${require})
message(STATUS "jit_host:\n${RUN_OUT}")
if(NOT RUN_OUT MATCHES "PASS")
  message(FATAL_ERROR "jit_host did not pass:\n${RUN_OUT}")
endif()
file(REMOVE_RECURSE ${WORK})
