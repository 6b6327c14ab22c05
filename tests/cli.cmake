# The pcnas program as a user meets it: help, a small latency table built and checked end to
# end, and clear refusals of bad options and bad files. Each test matches the message a user
# would read; none needs the Fashion-MNIST data.
set(cli_dir ${PROJECT_BINARY_DIR}/tests/cli)
file(MAKE_DIRECTORY ${cli_dir})
# A table cut off mid-file, and an output folder that holds an earlier search.
file(WRITE ${cli_dir}/truncated_table.json "{\"space\": \"fmnist_micro\", \"fixed")
file(WRITE ${cli_dir}/earlier_search/checkpoint.bin "")

function(pcnas_cli_test name expected)
  add_test(NAME cli.${name} COMMAND pcnas_cli ${ARGN} WORKING_DIRECTORY ${cli_dir})
  set_tests_properties(cli.${name} PROPERTIES PASS_REGULAR_EXPRESSION "${expected}")
endfunction()

pcnas_cli_test(help "Run `pcnas COMMAND --help`" --help)
pcnas_cli_test(search_help "--budget.*quick.*medium.*full" search --help)
pcnas_cli_test(info_json "\"num_architectures\": 3630312" info fmnist --json)

# A micro table: per-op times, 5 calibration and 5 check architectures in the same rounds.
pcnas_cli_test(latency_build "wrote micro_table.json"
               latency fmnist_micro --threads 1 --repeats 3 --warmup 1 --calibrate 5 --validate 5
               --out micro_table.json)
set_tests_properties(cli.latency_build PROPERTIES FIXTURES_SETUP micro_table)
pcnas_cli_test(latency_check "\"within_10\""
               latency fmnist_micro --table micro_table.json --validate 5 --repeats 3 --json)
# The check measures 5 of the calibration sample beside the others and reports the table at the
# machine's speed now, with the table as stored beside it.
pcnas_cli_test(latency_check_speed "\"as_stored\":.*\"speed_ratio\":[0-9.]+.*\"speed_references\":\\[{\"arch\""
               latency fmnist_micro --table micro_table.json --validate 3 --repeats 3 --json)
pcnas_cli_test(latency_refuses_other_space "latency table is for space 'fmnist_micro', expected 'fmnist'"
               latency fmnist --table micro_table.json --validate 3)
pcnas_cli_test(search_refuses_impossible_limit "no architecture meets 0.0001 ms; the smallest reachable value is"
               search fmnist_micro --table micro_table.json --latency-ms 0.0001 --out impossible)
pcnas_cli_test(latency_check_given_archs "k3e1 zero k3e1 zero +predicted +[0-9.]+ ms +measured +[0-9.]+ ms"
               latency fmnist_micro --table micro_table.json --arch "k3e1 zero k3e1 zero" --arch "k7e6 k7e6 k7e6 k7e6"
               --repeats 3)
pcnas_cli_test(latency_refuses_bad_arch "layer 1 .*.k9e9. is not a choice here; valid: k3e1 k3e3 k5e6 k7e6 zero"
               latency fmnist_micro --table micro_table.json --arch "k3e1 k9e9 k3e1 zero")
set_tests_properties(cli.latency_check cli.latency_check_speed cli.latency_check_given_archs cli.latency_refuses_bad_arch
                     cli.latency_refuses_other_space cli.search_refuses_impossible_limit
                     PROPERTIES FIXTURES_REQUIRED micro_table)

pcnas_cli_test(latency_refuses_truncated_table "truncated_table.json: not valid JSON"
               latency fmnist_micro --table truncated_table.json --validate 3)
pcnas_cli_test(latency_arch_needs_a_model "--arch measures architectures against a model"
               latency fmnist --arch "k3e3 k3e3 k3e3 k3e3 k3e3 k3e3 k3e3 k3e3")
pcnas_cli_test(latency_refuses_zero_validate "--validate needs at least 1 architecture, got 0"
               latency fmnist --validate 0)
pcnas_cli_test(search_refuses_unknown_budget "--budget must be quick, medium or full, got 'huge'"
               search fmnist --budget huge)
pcnas_cli_test(search_keeps_earlier_search "earlier_search holds an earlier search: pass --resume"
               search fmnist --out earlier_search)
pcnas_cli_test(unknown_space "fmnist_micro" info no_such_space)

# ---- Refusals: each must exit with its code (checked by expect.sh) and name the option or
# file and the reason. None of these needs the data.
set(expect ${PROJECT_SOURCE_DIR}/tests/cli/expect.sh)
set(pcnas $<TARGET_FILE:pcnas_cli>)
function(pcnas_cli_expect name code regex)
  add_test(NAME cli.${name} COMMAND ${expect} ${code} "${regex}" $<TARGET_FILE:pcnas_cli> ${ARGN}
           WORKING_DIRECTORY ${cli_dir})
endfunction()
# A latency table whose batch is 0: refused when it is read, not after the search.
file(WRITE ${cli_dir}/batch0_table.json [=[
{"format": "pcnas.latency_table", "version": 1, "space": "fmnist_micro", "unit": "ms", "fixed": 0.01,
 "layers": [{"choices": ["k3e1", "k3e3", "k5e6", "k7e6"], "times": [0.001, 0.002, 0.003, 0.004]},
            {"choices": ["k3e1", "k3e3", "k5e6", "k7e6", "zero"], "times": [0.001, 0.002, 0.003, 0.004, 0]},
            {"choices": ["k3e1", "k3e3", "k5e6", "k7e6"], "times": [0.001, 0.002, 0.003, 0.004]},
            {"choices": ["k3e1", "k3e3", "k5e6", "k7e6", "zero"], "times": [0.001, 0.002, 0.003, 0.004, 0]}],
 "provenance": {"device": "test", "backend": "eigen", "batch": 0, "threads": 1, "date": "2026-01-01",
                "library_version": "0.1.0", "repeats": 3, "warmup": 1}}
]=])
# The same table, batch 8, with times far below what the machine achieves: the architecture
# found is measured above the limit.
file(READ ${cli_dir}/batch0_table.json tiny_times)
string(REPLACE "\"batch\": 0" "\"batch\": 8" tiny_times "${tiny_times}")
file(WRITE ${cli_dir}/tiny_times_table.json "${tiny_times}")
string(REPEAT "k3e3" 25000 long_arch)

pcnas_cli_expect(help_exit_codes 0 "Exit codes: 0 done; 1 failed.*5 stopped by SIGINT or SIGTERM" --help)
pcnas_cli_expect(search_help_exit_codes 0 "--resume.*Exit codes: 0 done; 1 failed.*4 the output directory is in use"
                 search --help)
pcnas_cli_expect(negative_completions 2 "--completions: expected a whole number from 1 to 10000, got '-1'"
                 search fmnist_micro --completions -1)
pcnas_cli_expect(negative_steps 2 "--steps: expected a whole number from 1 to 1000000000, got '-2'"
                 search fmnist_micro --steps -2)
pcnas_cli_expect(negative_seed 2 "--seed: expected a whole number from 0 to 18446744073709551615, got '-1'"
                 search fmnist_micro --seed -1)
pcnas_cli_expect(overflowing_seed 2 "--seed: .*got '99999999999999999999999' \\(out of range\\)"
                 search fmnist_micro --seed 99999999999999999999999)
pcnas_cli_expect(nan_latency 2 "--latency-ms: expected a finite number above 0.*got 'nan'"
                 search fmnist_micro --latency-ms nan)
pcnas_cli_expect(zero_latency 2 "--latency-ms: expected a finite number above 0.*got '0'"
                 search fmnist_micro --latency-ms 0)
pcnas_cli_expect(negative_warmup_named 2 "^pcnas: --warmup: expected a whole number from 0"
                 bench fmnist_micro --warmup -1)
pcnas_cli_expect(batch_of_one 2 "--batch: expected a whole number from 2 to 65536, got '1'"
                 train fmnist_micro --arch largest --batch 1)
pcnas_cli_expect(random_without_seed 2 "--arch 'random:': expected random or random:SEED"
                 train fmnist_micro --arch random:)
pcnas_cli_expect(random_suffix 2 "--arch 'randomfoo': expected random or random:SEED"
                 train fmnist_micro --arch randomfoo)
pcnas_cli_expect(random_bad_seed 2 "--arch 'random:abc': expected random or random:SEED"
                 train fmnist_micro --arch random:abc)
pcnas_cli_expect(table_is_a_directory 2 "--table: .*: is a directory, not a file"
                 search fmnist_micro --table ${cli_dir} --out table_dir)
pcnas_cli_expect(table_batch_zero 2 "batch0_table.json: provenance.batch must be an integer from 1 to"
                 search fmnist_micro --table batch0_table.json --out batch0)
pcnas_cli_expect(too_many_threads 2 "--threads 4000 is more than 4 times the [0-9]+ cores"
                 train fmnist_micro --arch largest --threads 4000)
pcnas_cli_expect(long_argument_cut 2 "got 1 in 'k3e3k3e3.*\\.\\.\\. \\(100000 characters\\)' *$"
                 info fmnist --arch ${long_arch})
pcnas_cli_expect(missing_data_dir 2 "--data ${cli_dir}/no_such_dir: no such directory"
                 train fmnist_micro --arch largest --data ${cli_dir}/no_such_dir)
pcnas_cli_expect(unwritable_train_out 2 "--out /dev/null/out: (cannot create the directory|exists and is not)"
                 train fmnist_micro --arch largest --out /dev/null/out)
pcnas_cli_expect(unwritable_latency_out 2 "--out /dev/null/t.json: /dev/null is not a directory"
                 latency fmnist_micro --out /dev/null/t.json)
# What a run killed inside an atomic write leaves behind (pid 4194304 is above Linux's pid_max).
add_test(NAME cli.stale_temporary_removed
         COMMAND sh -c "mkdir -p stale && echo partial > stale/checkpoint.bin.tmp.4194304 && ${expect} 2 'removed .*checkpoint.bin.tmp.4194304, left by an interrupted run' ${pcnas} search fmnist_micro --table tiny_times_table.json --latency-ms 0.0001 --out stale && test ! -e stale/checkpoint.bin.tmp.4194304"
         WORKING_DIRECTORY ${cli_dir})
add_test(NAME cli.full_stdout_fails
         COMMAND ${expect} 1 "cannot write to standard output: No space left on device"
                 sh -c "exec $<TARGET_FILE:pcnas_cli> info fmnist --json > /dev/full")
# Out of memory is said as such (exit code 3), not as "std::bad_alloc". The address space is
# limited for the run, so the sanitizer builds, which reserve terabytes of shadow, leave it out.
add_test(NAME cli.out_of_memory
         COMMAND sh -c "ulimit -v 2000000 && exec ${expect} 3 'out of memory: the batch, the data or the network do not fit' ${pcnas} latency fmnist --batch 65536 --threads 1 --repeats 1 --warmup 0 --calibrate 0")
set_tests_properties(cli.out_of_memory PROPERTIES LABELS no_sanitizer)

# ---- Runs on a few thousand real Fashion-MNIST images (made from the installed data set), so
# that searches take seconds.
set(fmnist_dir "$ENV{PCNAS_DATA_DIR}")
if(NOT fmnist_dir)
  set(fmnist_dir /usr/share/datasets/fashion-mnist)
endif()
if(NOT EXISTS ${fmnist_dir}/train-images-idx3-ubyte.gz AND NOT EXISTS ${fmnist_dir}/train-images-idx3-ubyte)
  message(STATUS "Fashion-MNIST not found in ${fmnist_dir}: the CLI tests that train and search are skipped "
                 "(install dataset-fashion-mnist or set PCNAS_DATA_DIR)")
  return()
endif()
set(tiny ${cli_dir}/tiny_fmnist)
add_test(NAME cli.tiny_data COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/tiny_fmnist.sh ${fmnist_dir} ${tiny} 6000 500)
add_test(NAME cli.tiny_data_empty_test
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/tiny_fmnist.sh ${fmnist_dir} ${cli_dir}/tiny_no_test 6000 0)
add_test(NAME cli.tiny_data_small_train
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/tiny_fmnist.sh ${fmnist_dir} ${cli_dir}/tiny_small 3000 100)
set_tests_properties(cli.tiny_data cli.tiny_data_empty_test cli.tiny_data_small_train PROPERTIES FIXTURES_SETUP tiny_data)
set(small_search_base search fmnist_micro --table tiny_times_table.json --data ${tiny} --threads 1 --pool 1
    --completions 1)
set(small_search ${small_search_base} --steps 20)
string(REPLACE ";" " " small_search_text "${small_search}")
string(REPLACE ";" " " small_search_base_text "${small_search_base}")

pcnas_cli_expect(diverging_training_stops 1 "training diverged at step [0-9]+ .*lower the learning rate"
                 train fmnist_micro --arch largest --lr 1000 --epochs 1 --val 1000 --threads 1 --data ${tiny})
pcnas_cli_expect(empty_test_set 2 "the test set in .*tiny_no_test holds no images"
                 train fmnist_micro --arch largest --epochs 1 --val 1000 --data ${cli_dir}/tiny_no_test)
pcnas_cli_expect(small_training_set_named 2 "holds 3000 images; the search's held-out split holds 5000 of them"
                 search fmnist_micro --table tiny_times_table.json --data ${cli_dir}/tiny_small --out small_train)
add_test(NAME cli.over_limit_warned
         COMMAND sh -c "rm -rf over_limit && ${expect} 0 'warning: +the measured latency [0-9.]+ ms is above the limit' ${pcnas} ${small_search_text} --retrain-epochs 0 --out over_limit"
         WORKING_DIRECTORY ${cli_dir})
add_test(NAME cli.over_limit_in_result COMMAND grep -q "\"measured_over_limit\": true" over_limit/result.json
         WORKING_DIRECTORY ${cli_dir})
set_tests_properties(cli.over_limit_warned PROPERTIES FIXTURES_SETUP over_limit FIXTURES_REQUIRED tiny_data)
set_tests_properties(cli.over_limit_in_result PROPERTIES FIXTURES_REQUIRED over_limit)
# With a table that records its calibration sample, the result is timed beside 5 of it: the
# measured latency is also given at the table's speed, and that is what meets the limit or not.
add_test(NAME cli.search_speed_reference
         COMMAND sh -c "rm -rf speed_ref && ${expect} 0 'ms measured; [0-9.]+ ms at the table.s speed [(]this machine runs [0-9.]+ % (slower|faster) now[)]' ${pcnas} search fmnist_micro --table micro_table.json --data ${tiny} --threads 1 --pool 1 --completions 1 --steps 20 --retrain-epochs 0 --out speed_ref && grep -Eq '\"speed_ratio\": [0-9]' speed_ref/result.json && grep -Eq '\"measured_latency_at_table_speed_ms\": [0-9]' speed_ref/result.json"
         WORKING_DIRECTORY ${cli_dir})
set_tests_properties(cli.search_speed_reference PROPERTIES FIXTURES_REQUIRED "tiny_data;micro_table")
# SPOS: a finished search whose search.json is gone resumes both phases from their own
# checkpoints (uniform training, then evolution), and then the retraining.
add_test(NAME cli.spos_resumes_each_phase
         COMMAND sh -c "rm -rf spos && ${expect} 0 architecture ${pcnas} ${small_search_text} --method spos --retrain-epochs 1 --out spos && rm spos/search.json spos/result.json && ${expect} 0 'resumed uniform training.*resumed evolution.*resumed from spos/retrain_checkpoint.bin after epoch 1' ${pcnas} ${small_search_text} --method spos --retrain-epochs 1 --out spos --resume"
         WORKING_DIRECTORY ${cli_dir})
# A finished search resumed with other options is refused, naming each difference.
pcnas_cli_expect(resume_with_other_options 2
                 "holds a run with other options \\(latency_ms \\(not given\\) then, 0.3 now, .*method \"spos\" then, \"random\" now, seed 0 then, 7 now\\)"
                 ${small_search} --method random --seed 7 --latency-ms 0.3 --retrain-epochs 1 --out spos --resume)
set_tests_properties(cli.spos_resumes_each_phase PROPERTIES FIXTURES_SETUP spos_done FIXTURES_REQUIRED tiny_data)
set_tests_properties(cli.resume_with_other_options PROPERTIES FIXTURES_REQUIRED spos_done)
# Two runs into one --out: the second is refused with the first one's pid, exit code 4.
add_test(NAME cli.second_run_refused
         COMMAND sh -c "rm -rf busy; ${pcnas} ${small_search_base_text} --steps 100000 --out busy > busy.log 2>&1 & pid=$!; for i in $(seq 100); do grep -q . busy/.pcnas.lock 2>/dev/null && break; sleep 0.1; done; ${expect} 4 \"--out busy is in use by another pcnas run \\(pid $pid\\)\" ${pcnas} ${small_search_text} --out busy --resume; rc=$?; kill $pid; wait $pid; exit $rc"
         WORKING_DIRECTORY ${cli_dir})
# Two threads through the Eigen backend's OpenMP loops (the ThreadSanitizer variant relies on it).
pcnas_cli_expect(bench_two_threads 0 "train: +[0-9.]+ images/s"
                 bench fmnist_micro --arch largest --batch 32 --steps 2 --warmup 1 --threads 2 --data ${tiny})
# Every method killed at random moments, resumed, and stopped by SIGINT and SIGTERM.
add_test(NAME cli.interrupted_searches_resume
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/interrupt.sh ${pcnas} ${cli_dir}/tiny_times_table.json ${tiny}
                 ${cli_dir}/interrupt 3)
set_tests_properties(cli.diverging_training_stops cli.small_training_set_named cli.second_run_refused
                     cli.bench_two_threads
                     cli.interrupted_searches_resume PROPERTIES FIXTURES_REQUIRED tiny_data)
set_tests_properties(cli.empty_test_set PROPERTIES FIXTURES_REQUIRED tiny_data)
# The finalists rescored on more held-out images: search.json keeps the search's own pick and the
# rescoring, and the result is the rescored best.
add_test(NAME cli.final_images_rescore
         COMMAND sh -c "rm -rf final_images && ${expect} 0 'finalists rescored on 500 held-out images' ${pcnas} search fmnist_micro --table tiny_times_table.json --data ${tiny} --threads 1 --pool 2 --completions 1 --steps 20 --final-images 500 --retrain-epochs 0 --out final_images && grep -q '\"final_rescoring\"' final_images/search.json && grep -q '\"search_best_arch\"' final_images/search.json"
         WORKING_DIRECTORY ${cli_dir})
set_tests_properties(cli.final_images_rescore PROPERTIES FIXTURES_REQUIRED tiny_data)
pcnas_cli_expect(final_images_range 2 "--final-images" search fmnist_micro --final-images 5001)
