#!/usr/bin/env python3
"""Writes tiny seed GGUF files for the fuzz target (needs `pip install gguf numpy`)."""
import os
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType

out = sys.argv[1] if len(sys.argv) > 1 else "corpus/gguf"
os.makedirs(out, exist_ok=True)

# 1: every scalar type and arrays, no tensors.
w = GGUFWriter(os.path.join(out, "metadata.gguf"), "llama")
w.add_uint8("t.u8", 7); w.add_int8("t.i8", -7); w.add_uint16("t.u16", 700); w.add_int16("t.i16", -700)
w.add_uint32("t.u32", 70000); w.add_int32("t.i32", -70000); w.add_float32("t.f32", 1.5); w.add_bool("t.bool", True)
w.add_string("t.str", "héllo"); w.add_uint64("t.u64", 1 << 40); w.add_int64("t.i64", -(1 << 40)); w.add_float64("t.f64", 2.25)
w.add_array("t.arr_i32", [1, 2, 3]); w.add_array("t.arr_str", ["a", "bc", ""])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# 2: a micro llama with a 12-token SentencePiece vocabulary, F32 norms and quantized weights.
E, FF, V = 32, 64, 12
tokens = ["<unk>", "<s>", "</s>", "\u2581", "\u2581a", "b", "c", "<0x41>", "\u2581ab", "d", "e", "<0x0A>"]
w = GGUFWriter(os.path.join(out, "micro-llama.gguf"), "llama")
w.add_context_length(16); w.add_embedding_length(E); w.add_block_count(1); w.add_feed_forward_length(FF)
w.add_head_count(2); w.add_head_count_kv(1); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
w.add_tokenizer_model("llama"); w.add_token_list(tokens); w.add_token_scores([float(-i) for i in range(V)])
w.add_token_types([2, 3, 3] + [1] * 4 + [6] + [1] * 3 + [6]); w.add_bos_token_id(1); w.add_eos_token_id(2)
rng = np.random.default_rng(1)
def q(shape, t):
    a = rng.standard_normal(shape).astype(np.float32)
    if t == GGMLQuantizationType.F32:
        return a
    if t == GGMLQuantizationType.F16:
        return a.astype(np.float16)
    import gguf.quants as gq
    return gq.quantize(a, t)
w.add_tensor("token_embd.weight", q((V, E), GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
w.add_tensor("output_norm.weight", q((E,), GGMLQuantizationType.F32))
w.add_tensor("output.weight", q((V, E), GGMLQuantizationType.F16))
w.add_tensor("blk.0.attn_norm.weight", q((E,), GGMLQuantizationType.F32))
w.add_tensor("blk.0.ffn_norm.weight", q((E,), GGMLQuantizationType.F32))
for name, shape in [("attn_q", (E, E)), ("attn_k", (E // 2, E)), ("attn_v", (E // 2, E)), ("attn_output", (E, E)),
                    ("ffn_gate", (FF, E)), ("ffn_up", (FF, E)), ("ffn_down", (E, FF))]:
    w.add_tensor(f"blk.0.{name}.weight", q(shape, GGMLQuantizationType.Q4_0), raw_dtype=GGMLQuantizationType.Q4_0)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# 3: a byte-level BPE vocabulary with merges.
w = GGUFWriter(os.path.join(out, "bpe-vocab.gguf"), "llama")
w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("smollm")
w.add_token_list(["H", "e", "l", "o", "He", "ll", "Hell", "Hello", "\u0120", "1"]); w.add_token_merges(["H e", "l l", "He ll", "Hell o"])
w.add_token_types([1] * 10)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print("wrote seeds to", out)
