//! DingTalk markdown (robot messages, work-notification cards) with outside text made inert.
//!
//! DingTalk renders a subset of markdown — headings, quotes, bold and italics, links, images, lists — and whether
//! its renderer honours backslash escapes is not documented. So outside text (group titles, file names, reasons,
//! user ids) is not escaped but *disarmed*: every character that could start markup becomes its full-width twin
//! (`[` → `［`, `*` → `＊`, `@` → `＠`, …), line breaks become spaces, invisible and direction-changing characters
//! are dropped, and `://` and `www.` lose what makes a client turn them into links. The text still reads the same
//! to a person; no renderer can take it for markup.
//!
//! [`Markdown`] is the only way to build a message body: template text must be a `&'static str` (ours, reviewed
//! in the source), and everything else goes through [`inert`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Outside text, safe to place anywhere in a DingTalk markdown message.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let twin = match c {
            // Invisible characters and bidirectional overrides: they hide or reorder what a reader sees.
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' => {
                continue;
            }
            '\u{FEFF}' => continue,
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
                continue;
            }
            ':' if text[i + 1..].starts_with("//") => '：',
            '[' => '［',
            ']' => '］',
            '(' => '（',
            ')' => '）',
            '!' => '！',
            '*' => '＊',
            // Inside a word (`user_sales_lead`) an underscore starts no emphasis, and ids must stay as they are
            // to be searched for; at a word's edge it could.
            '_' if !inside_word(text, i) => '＿',
            '`' => '｀',
            '#' => '＃',
            '>' => '＞',
            '<' => '＜',
            '|' => '｜',
            '~' => '～',
            '@' => '＠',
            '\\' => '＼',
            '&' => '＆',
            '=' => '＝',
            '+' if out.is_empty() => '＋',
            '-' if out.is_empty() => '‐',
            '.' if is_ordered_marker(&out) => '．',
            'w' | 'W' if starts_www(text, i) => {
                out.push_str(&text[i..i + 3]);
                chars.nth(2);
                '．'
            }
            c => c,
        };
        out.push(twin);
    }
    out
}

/// Whether the character at `at` has a letter or digit on both sides.
fn inside_word(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back().is_some_and(char::is_alphanumeric);
    let after = text[at + 1..].chars().next().is_some_and(char::is_alphanumeric);
    before && after
}

/// `12.` at the very start would open an ordered list.
fn is_ordered_marker(so_far: &str) -> bool {
    !so_far.is_empty() && so_far.len() <= 9 && so_far.bytes().all(|b| b.is_ascii_digit())
}

/// `www.` at the start of a word is a link to most chat clients even without a scheme.
fn starts_www(text: &str, at: usize) -> bool {
    let rest = &text.as_bytes()[at..];
    let word_start = text[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
    word_start && rest.len() >= 4 && rest[..3].eq_ignore_ascii_case(b"www") && rest[3] == b'.'
}

/// A message body. Build it from template text (`raw`, which takes only string literals) and outside text
/// (`text`, `bold`, which disarm it); there is no way to append an arbitrary string as markup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Markdown(String);

impl Markdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Our own markup: headings, emphasis, line breaks around outside text.
    pub fn raw(mut self, template: &'static str) -> Self {
        self.0.push_str(template);
        self
    }

    /// Outside text, disarmed.
    pub fn text(mut self, outside: &str) -> Self {
        self.0.push_str(&inert(outside));
        self
    }

    /// Outside text in bold.
    pub fn bold(self, outside: &str) -> Self {
        self.raw("**").text(outside).raw("**")
    }

    /// A number, a time or an id we made: no markup in it, but it goes through [`inert`] all the same.
    pub fn value(self, value: impl fmt::Display) -> Self {
        self.text(&value.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Markdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    /// The test kit's markup check finds every construct in its hostile text live; through `inert`, none.
    #[test]
    fn hostile_markdown_goes_out_inert() {
        use dingguard_testkit::hostile::{COMPACT, MARKDOWN, live_markup};
        assert!(live_markup(&format!("**{}**", inert(MARKDOWN))).is_empty());
        assert!(live_markup(&inert(COMPACT)).is_empty());
    }

    use super::*;

    #[test]
    fn markup_characters_become_their_full_width_twins() {
        let hostile =
            "customer [Reset your DingTalk password](https://evil.example/x) ![t](https://evil.example/p.png)";
        let safe = inert(hostile);
        for c in ['[', ']', '(', ')', '!'] {
            assert!(!safe.contains(c), "{safe}");
        }
        assert!(!safe.contains("://"), "{safe}");
        assert_eq!(
            inert("# Heading\n> quote\r\n**b** _i_ `c` | t | @all <font>"),
            "＃ Heading ＞ quote ＊＊b＊＊ ＿i＿ ｀c｀ ｜ t ｜ ＠all ＜font＞"
        );
        assert_eq!(inert("user_sales_lead __x__"), "user_sales_lead ＿＿x＿＿", "ids keep their underscores");
    }

    #[test]
    fn list_markers_autolinks_and_invisible_characters_are_disarmed() {
        assert_eq!(inert("- item"), "‐ item");
        assert_eq!(inert("+ item"), "＋ item");
        assert_eq!(inert("12. item"), "12． item");
        assert_eq!(inert("v1.2-final.xlsx"), "v1.2-final.xlsx", "ordinary names read the same");
        assert_eq!(inert("see www.evil.example or WWW.evil.example"), "see www．evil.example or WWW．evil.example");
        assert_eq!(inert("awww.x"), "awww.x");
        assert_eq!(inert("pay\u{202E}fdp.exe\u{200B}"), "payfdp.exe");
        assert_eq!(inert("a\n\n\nb"), "a b");
        assert_eq!(inert("身份證-scans.zip"), "身份證-scans.zip");
    }

    #[test]
    fn the_builder_only_takes_literals_as_markup() {
        let md = Markdown::new().raw("### ").text("[x](y)").raw("\n\n").bold("*z*").value(7);
        assert_eq!(md.as_str(), "### ［x］（y）\n\n**＊z＊**7");
        assert_eq!(serde_json::to_string(&md).unwrap(), "\"### ［x］（y）\\n\\n**＊z＊**7\"");
    }
}
