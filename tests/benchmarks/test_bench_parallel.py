from benchmarks.bench_parallel import ANSWER_TOKENS, _ceiling, parse_batched_bench

OUTPUT = """
llama_batched_bench: n_kv_max = 4096, n_batch = 512, n_ubatch = 512, flash_attn = -1, is_pp_shared = 0

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|   128 |     64 |    1 |    192 |    0.898 |   142.47 |    1.627 |    39.32 |    2.526 |    76.01 |
|   128 |     64 |    8 |   1536 |    7.643 |   133.97 |    8.683 |    58.97 |   16.326 |    94.08 |
"""


def test_reads_llama_batched_bench_rows() -> None:
    rows = parse_batched_bench(OUTPUT)
    assert [r[:3] for r in rows] == [[1, 142.47, 39.32], [8, 133.97, 58.97]]
    assert rows[1][3] == 8 * ANSWER_TOKENS / 16.326


def test_the_ceiling_compares_eight_sequences_with_one() -> None:
    ceiling = _ceiling(parse_batched_bench(OUTPUT))
    assert "give 1.50x the decode tokens/s of one, and 1.24x the answer tokens/s" in ceiling
    assert _ceiling([]) == "llama-batched-bench gave no figures."
