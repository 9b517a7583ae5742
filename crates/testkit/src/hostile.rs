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
    fn the_check_finds_every_construct_when_it_is_live() {
        let live = live_markup(MARKDOWN);
        for marker in MARKERS.iter().filter(|m| **m != "EVIL-HTML") {
            assert!(live.iter().any(|f| f.contains(marker)), "{marker} not found live in {live:?}");
        }
        assert!(live.iter().any(|f| f.starts_with("HTML")), "raw HTML not found in {live:?}");
        assert!(!live_markup(COMPACT).is_empty());
        assert!(live_markup("plain words, a price of 5 * 3 and a_name").is_empty());
    }
}

/// Markup for pages: a script, an element with an event handler, a `javascript:` link, attribute and element
/// break-outs, markdown, a right-to-left override and a zero-width space.
pub const HTML: &str = "<script>alert('EVIL-SCRIPT')</script>\"><img src=x onerror=alert(1)>' onmouseover='alert(2) \
     <a href=\"javascript:alert(3)\">EVIL-A</a> javascript:alert(4) **EVIL-MD** \u{202E}EVIL-RTL\u{200B}";

/// Fails unless `page` holds only the markup our templates write: every element is one of theirs, no attribute is
/// an event handler, no link, form or source points at `javascript:`, and the one script is the console's own.
pub fn assert_no_live_html(what: &str, page: &str) {
    const OURS: &[&str] = &[
        "html", "head", "meta", "title", "link", "body", "header", "nav", "main", "a", "span", "form", "input",
        "button", "h1", "h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "section",
        "article", "label", "select", "option", "textarea", "strong", "br", "ul", "li", "script",
    ];
    let lower = page.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>').unwrap_or(after.len());
        let tag = &after[..close];
        rest = &after[close.min(after.len())..];
        if tag.starts_with('!') || tag.starts_with('/') {
            continue;
        }
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert!(OURS.contains(&name.as_str()), "{what}: an element <{name}> our templates never write: <{tag}>");
        if name == "script" {
            assert_eq!(tag, "script src=\"/assets/console.js\" defer", "{what}: a script that is not ours");
        }
        for (attr_name, value) in attributes(&tag[name.len()..]) {
            assert!(!attr_name.starts_with("on"), "{what}: an event handler in <{tag}>");
            if matches!(attr_name.as_str(), "href" | "action" | "src" | "formaction") {
                assert!(!value.trim().starts_with("javascript:"), "{what}: a javascript: link in <{tag}>");
            }
        }
    }
    assert!(!page.contains("EVIL-SCRIPT')</script>"), "{what}: the hostile script is there as markup");
}

/// The attributes of a tag's inside after its name, as a browser reads them: a quoted value runs to its closing
/// quote, whatever spaces it holds.
fn attributes(mut rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let end = rest.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(rest.len());
        let name = rest[..end].to_owned();
        rest = &rest[end..];
        let mut value = String::new();
        if let Some(after) = rest.trim_start().strip_prefix('=') {
            let after = after.trim_start();
            let (v, tail) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let close = body.find(q).unwrap_or(body.len());
                    (&body[..close], &body[(close + 1).min(body.len())..])
                }
                _ => {
                    let close = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..close], &after[close..])
                }
            };
            value = v.to_owned();
            rest = tail;
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod html_tests {
    use super::assert_no_live_html;

    const OURS: &str = r#"<!DOCTYPE html><html><body><p title="a &quot; onmouseover=&quot;x">&lt;img src=x onerror=y&gt;</p><script src="/assets/console.js" defer></script></body></html>"#;

    #[test]
    fn our_markup_with_escaped_text_passes() {
        assert_no_live_html("ours", OURS);
    }

    #[test]
    #[should_panic(expected = "an element <img>")]
    fn a_live_element_is_caught() {
        assert_no_live_html("img", "<p><img src=x onerror=alert(1)></p>");
    }

    #[test]
    #[should_panic(expected = "an event handler")]
    fn a_handler_that_broke_out_of_an_attribute_is_caught() {
        assert_no_live_html("attr", r#"<p title="" onmouseover="alert(2)">x</p>"#);
    }

    #[test]
    #[should_panic(expected = "javascript: link")]
    fn a_javascript_link_is_caught() {
        assert_no_live_html("href", r#"<a href="javascript:alert(3)">x</a>"#);
    }

    #[test]
    #[should_panic(expected = "a script that is not ours")]
    fn a_foreign_script_is_caught() {
        assert_no_live_html("script", "<script>alert(1)</script>");
    }
}
