# IR suite. The unit tests (test_ir, test_mask, test_rope) register through the unit glob;
# this adds the independent numpy check of the RoPE plans: rope_reference.py runs
# `test_rope --dump` and recomputes every table (1e-12 relative). Without Python or numpy
# the test fails; it never skips.
if(ATTNC_PYTHON)
  add_test(NAME ir.rope_vs_numpy
           COMMAND ${ATTNC_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/rope_reference.py
                   --compare $<TARGET_FILE:test_rope>)
else()
  message(WARNING "attnc: no Python 3 interpreter; ir.rope_vs_numpy will fail")
  add_test(NAME ir.rope_vs_numpy COMMAND ${CMAKE_COMMAND} -E false)
endif()
set_tests_properties(ir.rope_vs_numpy PROPERTIES LABELS "ir;python")
