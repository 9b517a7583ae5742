//! Every notifier against a local stand-in that checks what DingTalk, or a Standard Webhooks receiver, checks.

mod retry;
mod robot;
mod standin;
mod webhook;
mod work;
