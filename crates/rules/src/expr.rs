//! The condition language: `field op value` comparisons joined by `and`, `or`, `not` and parentheses, with macro
//! names standing for whole sub-conditions, e.g.
//! `event.type = members_added and members.external_count > 0 and not group.id in (trusted_groups)`.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => write!(f, "{s:?}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    IContains,
    StartsWith,
    EndsWith,
    Glob,
    Regex,
    Exists,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "=" | "==" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "in" => Self::In,
            "contains" => Self::Contains,
            "icontains" => Self::IContains,
            "startswith" => Self::StartsWith,
            "endswith" => Self::EndsWith,
            "glob" => Self::Glob,
            "regex" => Self::Regex,
            "exists" => Self::Exists,
            _ => return None,
        })
    }
}

/// A parsed condition, before list and macro names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// A bare identifier: a macro name (or, once resolved, an error if it is not one).
    Name(String),
    Compare {
        field: String,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    One(Value),
    /// `(a, b, list_name)`: items, where a bare word may name a list.
    Set(Vec<Item>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Literal(Value),
    /// A bare word: a list name if one exists, else the word itself.
    Word(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(f64),
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' || c == ',' {
            out.push(Token::Sym(match c {
                '(' => "(",
                ')' => ")",
                _ => ",",
            }));
            i += 1;
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = match two.as_str() {
                "==" => "==",
                "!=" => "!=",
                "<=" => "<=",
                ">=" => ">=",
                _ => match c {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    _ => return Err(format!("unexpected `{c}` at column {}", i + 1)),
                },
            };
            i += sym.len();
            out.push(Token::Sym(sym));
        } else if c == '"' || c == '\'' {
            let quote = c;
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') if chars.get(i + 1).is_some() => {
                        text.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&ch) if ch == quote => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Quoted(text));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | ',' | '=' | '!' | '<' | '>' | '"' | '\'')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let numeric = word.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-');
            match word.parse::<f64>() {
                Ok(n) if numeric => out.push(Token::Number(n)),
                _ => out.push(Token::Word(word)),
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

pub fn parse(src: &str) -> Result<Expr, String> {
    let mut p = Parser { tokens: tokenize(src)?, pos: 0 };
    if p.tokens.is_empty() {
        return Err("condition is empty".into());
    }
    let expr = p.or()?;
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {} after a complete condition", describe(t)));
    }
    Ok(expr)
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("`{w}`"),
        Token::Quoted(q) => format!("\"{q}\""),
        Token::Number(n) => format!("`{n}`"),
        Token::Sym(s) => format!("`{s}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") { Ok(Expr::Not(Box::new(self.not()?))) } else { self.primary() }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Sym("(")) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Sym(")")) => Ok(inner),
                    other => {
                        Err(format!("expected `)` but found {}", other.as_ref().map_or("the end".into(), describe)))
                    }
                }
            }
            Some(Token::Word(name)) => {
                let op = match self.peek() {
                    Some(Token::Sym(s)) => Op::parse(s),
                    Some(Token::Word(w)) => Op::parse(w),
                    _ => None,
                };
                let Some(op) = op else { return Ok(Expr::Name(name)) };
                self.pos += 1;
                let operand = match op {
                    Op::Exists => Operand::None,
                    Op::In => self.set()?,
                    _ => Operand::One(self.value()?),
                };
                Ok(Expr::Compare { field: name, op, operand })
            }
            Some(t) => Err(format!("expected a field, a macro or `(` but found {}", describe(&t))),
            None => Err("condition ends too early".into()),
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Quoted(s)) => Ok(Value::Text(s)),
            Some(Token::Number(n)) => Ok(Value::Number(n)),
            Some(Token::Word(w)) if w == "true" || w == "false" => Ok(Value::Bool(w == "true")),
            Some(Token::Word(w)) if !matches!(w.as_str(), "and" | "or" | "not") => Ok(Value::Text(w)),
            other => Err(format!("expected a value but found {}", other.as_ref().map_or("the end".into(), describe))),
        }
    }
    fn set(&mut self) -> Result<Operand, String> {
        if self.next() != Some(Token::Sym("(")) {
            return Err("`in` needs a parenthesised list, e.g. in (a, b)".into());
        }
        let mut items = Vec::new();
        loop {
            match self.next() {
                Some(Token::Sym(")")) if items.is_empty() => break,
                Some(Token::Quoted(s)) => items.push(Item::Literal(Value::Text(s))),
                Some(Token::Number(n)) => items.push(Item::Literal(Value::Number(n))),
                Some(Token::Word(w)) => items.push(Item::Word(w)),
                other => {
                    return Err(format!(
                        "expected a list item but found {}",
                        other.as_ref().map_or("the end".into(), describe)
                    ));
                }
            }
            match self.next() {
                Some(Token::Sym(",")) => {}
                Some(Token::Sym(")")) => break,
                other => {
                    return Err(format!(
                        "expected `,` or `)` but found {}",
                        other.as_ref().map_or("the end".into(), describe)
                    ));
                }
            }
        }
        Ok(Operand::Set(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let e = parse("a = 1 or b = 2 and not c exists").unwrap();
        let Expr::Or(_, right) = e else { panic!("{e:?}") };
        let Expr::And(_, not) = *right else { panic!() };
        assert!(matches!(*not, Expr::Not(_)));
    }

    #[test]
    fn operands_and_sets_parse() {
        let e = parse(r#"file.name icontains "身份證" and group.id in (trusted, "chat 1", 5)"#).unwrap();
        let Expr::And(left, right) = e else { panic!() };
        assert_eq!(
            *left,
            Expr::Compare {
                field: "file.name".into(),
                op: Op::IContains,
                operand: Operand::One(Value::Text("身份證".into()))
            }
        );
        let Expr::Compare { operand: Operand::Set(items), .. } = *right else { panic!() };
        assert_eq!(items.len(), 3);
        assert_eq!(
            parse("x >= -2.5").unwrap(),
            Expr::Compare { field: "x".into(), op: Op::Ge, operand: Operand::One(Value::Number(-2.5)) }
        );
        assert_eq!(parse("(my_macro)").unwrap(), Expr::Name("my_macro".into()));
    }

    #[test]
    fn errors_say_what_was_expected() {
        for (src, needle) in [
            ("", "empty"),
            ("a = ", "expected a value"),
            ("(a = 1", "expected `)`"),
            ("a in b", "parenthesised"),
            ("a = 1 b", "after a complete condition"),
            ("a = \"open", "unterminated"),
            ("a in (1 2)", "expected `,` or `)`"),
        ] {
            let err = parse(src).unwrap_err();
            assert!(err.contains(needle), "{src:?}: {err}");
        }
    }
}
