//! DingTalk's work notifications, served by the DingTalk stand-in.

pub use dingguard_dingtalk_standin::work::*;
