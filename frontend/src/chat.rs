//! `hartlm chat` (and `run -cnv`): a multi-turn conversation read line by line from stdin, each
//! turn rendered with the model's chat template and evaluated on top of the KV cache the
//! previous turns left (only the tokens past the common prefix are evaluated).
//!
//! Ctrl-C stops the reply being written, not the program; at the prompt it ends the program as
//! usual. `/reset` forgets the conversation, `/exit` (or end of input) ends it.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use crate::cli::{ChatArgs, Defaults, open};
use crate::commands::{chat_template, chat_tokens, context_params, note_gpu_layers};
use crate::engine::{Context, Engine};
use crate::generate::{feed_prompt, generate};
use crate::sampler::Sampler;
use crate::stream::StreamDecoder;
use crate::template::{ChatTemplate, Message};

pub fn command(engine: &Engine, args: ChatArgs, defaults: &Defaults) -> Result<()> {
    run_chat(engine, args, defaults, None)
}

/// How many leading tokens two sequences share.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Cuts sequence 0 back to what `tokens` shares with `cached` (at least one token is left to
/// evaluate, for its logits); returns how many tokens of `tokens` the cache already holds.
/// Where the model cannot cut (short-conv state), the sequence starts over.
pub fn reuse_prefix(ctx: &mut Context, seq: u32, cached: &mut Vec<u32>, tokens: &[u32]) -> usize {
    let mut keep = common_prefix(cached, tokens).min(tokens.len().saturating_sub(1));
    if !ctx.truncate(seq, keep) {
        ctx.truncate(seq, 0);
        keep = 0;
    }
    cached.truncate(keep);
    keep
}

/// Set by SIGINT while a reply is being written.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Ctrl-C stops the reply while this lives; the default action (ending the program) returns
/// when it drops.
struct StopOnCtrlC;

impl StopOnCtrlC {
    fn install() -> StopOnCtrlC {
        STOP.store(false, Ordering::Relaxed);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
        StopOnCtrlC
    }
}

impl Drop for StopOnCtrlC {
    fn drop(&mut self) {
        // SAFETY: restoring the default disposition of SIGINT.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    }
}

/// A conversation and what of it sequence 0 of a context holds.
pub struct Conversation {
    system: Vec<Message>,
    pub messages: Vec<Message>,
    /// The tokens sequence 0 holds, in order.
    cached: Vec<u32>,
}

/// How a turn ended.
pub struct Reply {
    pub text: String,
    /// Prompt tokens evaluated for this turn (those past the reused prefix).
    pub evaluated: usize,
    pub generated: Vec<u32>,
    /// The reply filled the context.
    pub context_full: bool,
}

impl Conversation {
    pub fn new(system: Option<&str>) -> Conversation {
        let system: Vec<Message> = system.iter().map(|s| Message::new("system", s)).collect();
        Conversation { messages: system.clone(), system, cached: Vec::new() }
    }

    /// Forgets every turn (the system prompt stays).
    pub fn reset(&mut self, ctx: &mut Context) {
        self.messages = self.system.clone();
        ctx.truncate(0, 0);
        self.cached.clear();
    }

    /// Adds the user's turn and generates the reply, streaming its text to `on_text`; stops early
    /// when `stop` is set. A turn the template refuses, or that does not fit, leaves the
    /// conversation as it was.
    #[allow(clippy::too_many_arguments)]
    pub fn turn(
        &mut self,
        ctx: &mut Context,
        template: &ChatTemplate,
        user: &str,
        sampler: &mut Sampler,
        n_predict: Option<usize>,
        stop: &AtomicBool,
        mut on_text: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<Reply> {
        let n_ctx = ctx.params.n_ctx as usize;
        self.messages.push(Message::new("user", user));
        let text = match template.render(&self.messages, true, &Default::default()) {
            Ok(t) => t,
            Err(e) => {
                self.messages.pop();
                bail!(e);
            }
        };
        let tokens = chat_tokens(ctx.model(), &text);
        if tokens.len() >= n_ctx {
            self.messages.pop();
            bail!("the conversation is {} tokens, the context {n_ctx}: /reset it or raise -c", tokens.len());
        }
        let keep = reuse_prefix(ctx, 0, &mut self.cached, &tokens);
        feed_prompt(ctx, 0, &tokens[keep..])?;
        self.cached.extend_from_slice(&tokens[keep..]);
        let room = n_ctx - tokens.len();
        let limit = n_predict.map_or(room, |n| n.min(room));
        let mut decoder = StreamDecoder::default();
        let mut reply = String::new();
        let g = generate(ctx, 0, sampler, &mut self.cached, limit, stop, |piece| {
            let s = decoder.push(piece);
            reply.push_str(&s);
            on_text(&s)
        })?;
        let rest = decoder.finish();
        reply.push_str(&rest);
        on_text(&rest)?;
        self.messages.push(Message::new("assistant", &reply));
        Ok(Reply {
            text: reply,
            evaluated: tokens.len() - keep,
            context_full: !g.ended && g.tokens.len() == room,
            generated: g.tokens,
        })
    }
}

/// The conversation loop; `first` is a turn given on the command line (`run -cnv -p`).
pub fn run_chat(
    engine: &Engine,
    args: ChatArgs,
    defaults: &Defaults,
    mut first: Option<String>,
) -> Result<()> {
    let sampling = args.sampling.config()?;
    note_gpu_layers(args.n_gpu_layers.as_deref());
    let m = open(engine, &args.model.model, false)?;
    let c = m.config()?.clone();
    m.tokenizer().map_err(|e| anyhow::anyhow!("{}: {e}", args.model.model.display()))?;
    let template = chat_template(&m, args.chat_template_file.as_deref())?;
    if args.verbose {
        eprintln!("hartlm: chat template: {}", template.source);
    }
    let params = context_params(&args.eval, defaults, c.n_ctx_train, 0, 1)?;
    let mut ctx = m.context(params)?;
    let mut sampler = Sampler::new(sampling);
    let mut chat = Conversation::new(args.system.as_deref());
    let n_predict = usize::try_from(args.n_predict).ok();
    let interactive = std::io::stdin().is_terminal();
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout();
    if interactive {
        eprintln!(
            "hartlm chat: /reset clears the conversation, /exit or Ctrl-D ends it, Ctrl-C stops a reply"
        );
    }
    loop {
        let line = match first.take() {
            Some(p) => p,
            None => {
                if interactive {
                    write!(out, "> ")?;
                    out.flush()?;
                }
                let mut line = String::new();
                if stdin.read_line(&mut line)? == 0 {
                    break;
                }
                line.trim_end_matches(['\n', '\r']).to_string()
            }
        };
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.reset(&mut ctx);
                if interactive {
                    eprintln!("(conversation cleared)");
                }
                continue;
            }
            _ => {}
        }
        let reply = {
            let _ctrl_c = StopOnCtrlC::install();
            chat.turn(&mut ctx, &template, &line, &mut sampler, n_predict, &STOP, |s| {
                write!(out, "{s}")?;
                out.flush()
            })
        };
        match reply {
            Ok(r) => {
                writeln!(out)?;
                if STOP.load(Ordering::Relaxed) {
                    eprintln!("(reply stopped)");
                } else if r.context_full {
                    eprintln!("(the context is full: /reset to continue)");
                }
            }
            // A turn that cannot be taken is reported; the conversation goes on.
            Err(e)
                if e.downcast_ref::<crate::engine::EngineError>().is_none()
                    && e.downcast_ref::<std::io::Error>().is_none() =>
            {
                eprintln!("hartlm: {}", hartlm_abi::text::escape_controls(&format!("{e:#}")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_counts_shared_leading_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2]), 2);
    }
}
