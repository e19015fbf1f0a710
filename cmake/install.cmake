# What `cmake --install` puts in a prefix, and the package find_package(attnc) finds there:
#   include/attnc/*.h                    the public headers
#   lib/libattnc_core.a [libattnc_llvm.a] the static libraries
#   bin/attnc                            the CLI (the generator attnc_add_kernels runs)
#   lib/cmake/attnc/                     attncConfig.cmake + version, the exported targets,
#                                        attncKernels.cmake (attnc_add_kernels)
#   lib/pkgconfig/attnc.pc               for builds without CMake
# Imported targets: attnc::attnc (link this: the C API with every backend this build has),
# attnc::core, attnc::llvm (when built with LLVM), attnc::cli.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# One library for programs: attnc_llvm (which links attnc_core after it, the order the
# C API's two attnc_context_create definitions rely on: runtime/engine.h) or attnc_core.
# In this tree it is attnc::attnc; the name `attnc` alone is the CLI.
add_library(attnc_lib INTERFACE)
if(ATTNC_HAVE_LLVM)
  target_link_libraries(attnc_lib INTERFACE attnc_llvm)
else()
  target_link_libraries(attnc_lib INTERFACE attnc_core)
endif()
add_library(attnc::attnc ALIAS attnc_lib)
add_executable(attnc::cli ALIAS attnc)

set_target_properties(attnc_lib PROPERTIES EXPORT_NAME attnc)
set_target_properties(attnc_core PROPERTIES EXPORT_NAME core)
set_target_properties(attnc PROPERTIES EXPORT_NAME cli INSTALL_RPATH_USE_LINK_PATH TRUE)
if(ATTNC_SANITIZE)
  # Instrumented archives need the sanitizer runtimes in whatever links them.
  target_link_options(attnc_core INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
endif()

set(ATTNC_EXPORTED attnc_lib attnc_core attnc)
if(ATTNC_HAVE_LLVM)
  set_target_properties(attnc_llvm PROPERTIES EXPORT_NAME llvm)
  list(APPEND ATTNC_EXPORTED attnc_llvm)
endif()
install(TARGETS ${ATTNC_EXPORTED} EXPORT attncTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
file(GLOB ATTNC_PUBLIC_HEADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/include/attnc/*.h)
install(FILES ${ATTNC_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnc)

set(ATTNC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attnc)
install(EXPORT attncTargets NAMESPACE attnc:: DESTINATION ${ATTNC_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/attncConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/cmake/attncConfig.cmake INSTALL_DESTINATION ${ATTNC_CMAKE_DIR})
# 0.x: a minor version may change the API.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/attncConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/attncConfig.cmake ${CMAKE_BINARY_DIR}/cmake/attncConfigVersion.cmake
              ${CMAKE_SOURCE_DIR}/cmake/attncKernels.cmake
        DESTINATION ${ATTNC_CMAKE_DIR})

# pkg-config: static archives only, so every dependency is in Libs. The prefix is found
# from the .pc file's own place, so the tree may be installed with --prefix anywhere.
set(ATTNC_PC_LIBS "-L\${libdir}")
if(ATTNC_HAVE_LLVM)
  get_filename_component(ATTNC_PC_LLVM_DIR ${LLVM_LIB} DIRECTORY)
  string(APPEND ATTNC_PC_LIBS " -lattnc_llvm -lattnc_core ${LLVM_LIB} -Wl,-rpath,${ATTNC_PC_LLVM_DIR}")
else()
  string(APPEND ATTNC_PC_LIBS " -lattnc_core")
endif()
string(APPEND ATTNC_PC_LIBS " -lm")
foreach(_lib ${CMAKE_DL_LIBS})
  string(APPEND ATTNC_PC_LIBS " -l${_lib}")
endforeach()
string(APPEND ATTNC_PC_LIBS " -pthread")
if(ATTNC_SANITIZE)
  string(APPEND ATTNC_PC_LIBS " -fsanitize=address,undefined")
endif()
set(ATTNC_PC_PREFIX "\${pcfiledir}/..")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(ATTNC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  string(REPLACE "/" ";" _parts "${CMAKE_INSTALL_LIBDIR}")
  foreach(_p ${_parts})
    string(APPEND ATTNC_PC_PREFIX "/..")
  endforeach()
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/attnc.pc.in ${CMAKE_BINARY_DIR}/cmake/attnc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/attnc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
