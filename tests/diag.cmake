# Diagnostic tests: each tests/diag/NAME.attn holds one kind of error (many_errors.attn
# several); `attnc check` must exit 1 and print exactly tests/diag/NAME.expected on stderr.
file(GLOB DIAG_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/diag/*.attn)
foreach(spec ${DIAG_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME diag.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/diag/run_one.sh $<TARGET_FILE:attnc> ${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
