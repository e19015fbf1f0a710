add_executable(frontend_bench ${CMAKE_SOURCE_DIR}/bench/frontend_bench.c)
target_link_libraries(frontend_bench PRIVATE attnc_core)
