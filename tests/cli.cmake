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
pcnas_cli_test(latency_refuses_other_space "latency table is for space 'fmnist_micro', expected 'fmnist'"
               latency fmnist --table micro_table.json --validate 3)
pcnas_cli_test(search_refuses_impossible_limit "no architecture meets 0.0001 ms; the smallest reachable value is"
               search fmnist_micro --table micro_table.json --latency-ms 0.0001 --out impossible)
pcnas_cli_test(latency_check_given_archs "k3e1 zero k3e1 zero +predicted +[0-9.]+ ms +measured +[0-9.]+ ms"
               latency fmnist_micro --table micro_table.json --arch "k3e1 zero k3e1 zero" --arch "k7e6 k7e6 k7e6 k7e6"
               --repeats 3)
pcnas_cli_test(latency_refuses_bad_arch "layer 1 .*.k9e9. is not a choice here; valid: k3e1 k3e3 k5e6 k7e6 zero"
               latency fmnist_micro --table micro_table.json --arch "k3e1 k9e9 k3e1 zero")
set_tests_properties(cli.latency_check cli.latency_check_given_archs cli.latency_refuses_bad_arch
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
