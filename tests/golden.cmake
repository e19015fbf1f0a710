# spec -> IR text golden tests: one per example spec, run from the source dir so paths are stable.
file(GLOB GOLDEN_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*.attn)
foreach(spec ${GOLDEN_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME golden.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/golden/run_golden.sh $<TARGET_FILE:attnc>
                   examples/${name}.attn tests/golden/${name}.ir
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
# Every example must pass `attnc check`.
add_test(NAME examples.check COMMAND $<TARGET_FILE:attnc> check ${GOLDEN_SPECS})
