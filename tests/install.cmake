# The installed package, used the way a user would: `cmake --install` into a fresh prefix,
# then examples/cmake_project (find_package(attnc), attnc_add_kernels, attnc::attnc)
# configured, built, run, rebuilt after a spec edit, and examples/host/jit_host.c compiled
# with `pkg-config --cflags --libs attnc` and run. The example links a cpu kernel: in a
# build without LLVM those steps are reported as not run, and the rest still runs.
add_test(NAME install.package
         COMMAND ${CMAKE_COMMAND}
                 -DBUILD_DIR=${CMAKE_BINARY_DIR}
                 -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
                 -DWORK=${CMAKE_BINARY_DIR}/install-test
                 -DC_COMPILER=${CMAKE_C_COMPILER}
                 -DHAVE_LLVM=${ATTNC_HAVE_LLVM}
                 -DGENERATOR=${CMAKE_GENERATOR}
                 -P ${CMAKE_SOURCE_DIR}/tests/install/run_install_test.cmake)
set_tests_properties(install.package PROPERTIES LABELS "install" TIMEOUT 900)
