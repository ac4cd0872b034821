// Fuzzes the GGUF reader and everything that trusts it: metadata decoding, tensor access,
// tokenizer and model construction must reject bad input with an error, never panic or over-read.
#![no_main]

use hartlm_engine::gguf::{GgufFile, Value};
use hartlm_engine::model::Model;
use hartlm_engine::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else { return };
    let keys: Vec<String> = file.keys().map(str::to_string).collect();
    for k in &keys {
        if let Some(Value::Array(a)) = file.get(k) {
            if let Some(s) = a.strings() {
                s.for_each(|x| assert!(x.len() <= data.len()));
            }
            let _ = a.ints();
            if let Some(f) = a.f32s() {
                f.for_each(drop);
            }
        }
    }
    for t in &file.index.tensors {
        assert_eq!(file.tensor_bytes(t).len(), t.data.len());
    }
    if let Ok(tok) = Tokenizer::from_gguf(&file) {
        let ids = tok.encode("Hello, world! 123 \u{1f999}", true, true);
        ids.iter().for_each(|&i| drop(tok.piece_bytes(i)));
    }
    let _ = Model::from_file(file);
});
