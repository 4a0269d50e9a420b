# Runs one fuzzer for SECONDS over the committed corpus; fails on any crash,
# leak, sanitizer report or input slower than 10 s. Never writes into the
# source tree: what the run finds goes to WORK_DIR/corpus, the input that
# failed to WORK_DIR/crashes.
#   cmake -DFUZZER=... -DCORPUS=... -DDICTIONARY=... -DWORK_DIR=... -DSECONDS=... -P run_fuzzer.cmake
foreach(var FUZZER CORPUS WORK_DIR SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}= is required")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} is not built: build the project first (cmake --build build)")
endif()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/corpus ${WORK_DIR}/crashes)
set(options -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
            -artifact_prefix=${WORK_DIR}/crashes/)
if(DEFINED DICTIONARY AND EXISTS ${DICTIONARY})
  list(APPEND options -dict=${DICTIONARY})
endif()
# libFuzzer reads every directory given and writes new inputs to the first.
execute_process(COMMAND ${FUZZER} ${options} ${WORK_DIR}/corpus ${CORPUS} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  file(GLOB found ${WORK_DIR}/crashes/*)
  message(FATAL_ERROR "${FUZZER} failed (${result}). The input: ${found}\n"
                      "Replay it with: ${FUZZER} <input>. Once fixed, add it to ${CORPUS}.")
endif()
