//! Text from outside that tries to become markup, and the check that what we sent kept it inert.
//!
//! [`MARKDOWN`] packs every construct DingTalk's markdown knows into one string, each around a marker of its own.
//! If any of them were live in a message, parsing the message would yield an element (a link, an image, a
//! heading, emphasis, code, a quote, a list item, a table, raw HTML) whose whole text is that marker. Our own
//! templates put outside text inside elements too (a file name in bold), but then the element's text is the whole
//! disarmed string, never the marker alone; so [`assert_inert`] needs no second, benign rendering to compare with.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// A value for any field an outsider controls: a group title, a file name, a reason, a display name.
pub const MARKDOWN: &str = "customer [EVIL-LINK](https://evil.example/reset) ![EVIL-IMG](https://evil.example/p.png) \
     **EVIL-STRONG** *EVIL-EM* _EVIL-UNDER_ `EVIL-CODE` <font color=\"red\">EVIL-HTML</font> @all \
     https://evil.example/raw www.evil.example <https://evil.example/auto>\n\n# EVIL-HEADING\n> EVIL-QUOTE\n\
     - EVIL-ITEM\n1. EVIL-ORDERED\n\n| EVIL-TABLE | x |\n|---|---|\n| y | z |\n\u{202E}EVIL-RTL\u{200B}";

/// The same, where a value must be a valid id-like string (no spaces or newlines): markup that needs no spaces.
pub const COMPACT: &str = "[EVIL-LINK](https://evil.example/reset)**EVIL-STRONG**`EVIL-CODE`<b>EVIL-HTML</b>@all";

const MARKERS: &[&str] = &[
    "EVIL-LINK",
    "EVIL-IMG",
    "EVIL-STRONG",
    "EVIL-EM",
    "EVIL-UNDER",
    "EVIL-CODE",
    "EVIL-HTML",
    "EVIL-HEADING",
    "EVIL-QUOTE",
    "EVIL-ITEM",
    "EVIL-ORDERED",
    "EVIL-TABLE",
];

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// What a parse of `text` found that outside text could have made: `(element, its text)` for every element
/// whose text is exactly a marker, every link or image (with where it points) that leads to `evil.example`, and
/// every piece of raw HTML.
pub fn live_markup(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    // The text of each open element, innermost last.
    let mut open: Vec<(String, String)> = Vec::new();
    for event in Parser::new_ext(text, options()) {
        match event {
            Event::Start(tag) => {
                let name = match &tag {
                    Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                        if dest_url.contains("evil") {
                            found.push(format!("{tag:?} to {dest_url}"));
                        }
                        format!("{tag:?}")
                    }
                    Tag::HtmlBlock => {
                        found.push("an HTML block".into());
                        "html".into()
                    }
                    other => format!("{other:?}"),
                };
                open.push((name, String::new()));
            }
            Event::End(end) => {
                let Some((name, inner)) = open.pop() else { continue };
                if MARKERS.contains(&inner.trim()) && !matches!(end, TagEnd::Paragraph) {
                    found.push(format!("{name} holding {inner:?}"));
                }
                if let Some((_, outer)) = open.last_mut() {
                    outer.push_str(&inner);
                }
            }
            Event::Code(t) => {
                if MARKERS.contains(&t.trim()) {
                    found.push(format!("code holding {t:?}"));
                }
                if let Some((_, inner)) = open.last_mut() {
                    inner.push_str(&t);
                }
            }
            Event::Text(t) => {
                if let Some((_, inner)) = open.last_mut() {
                    inner.push_str(&t);
                }
            }
            Event::Html(html) | Event::InlineHtml(html) => found.push(format!("HTML {html:?}")),
            _ => {}
        }
    }
    // Chat clients link bare addresses and highlight @-mentions without any markup.
    for raw in ["://evil", "www.evil", "@all", "\u{202E}", "\u{200B}"] {
        if text.contains(raw) {
            found.push(format!("raw {raw:?}"));
        }
    }
    found
}

/// Panics, naming what it found and where, when `text` (a message body we sent) holds live outside markup.
pub fn assert_inert(what: &str, text: &str) {
    let found = live_markup(text);
    assert!(found.is_empty(), "{what} holds live markup from outside: {found:?}\n--- message ---\n{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_finds_every_construct_when_it_is_live_and_none_when_disarmed() {
        let live = live_markup(MARKDOWN);
        for marker in MARKERS.iter().filter(|m| **m != "EVIL-HTML") {
            assert!(live.iter().any(|f| f.contains(marker)), "{marker} not found live in {live:?}");
        }
        assert!(live.iter().any(|f| f.starts_with("HTML")), "raw HTML not found in {live:?}");
        assert!(live_markup(&format!("**{}**", dingguard_notify::inert(MARKDOWN))).is_empty());
        assert!(live_markup(&dingguard_notify::inert(COMPACT)).is_empty());
        assert!(!live_markup(COMPACT).is_empty());
    }
}
