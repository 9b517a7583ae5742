/// `30s`, `10m`, `1h`, `2d` → milliseconds.
pub fn parse_ms(src: &str) -> Result<i64, String> {
    let src = src.trim();
    let (digits, unit) = src.split_at(src.find(|c: char| !c.is_ascii_digit()).unwrap_or(src.len()));
    let n: i64 = digits.parse().map_err(|_| format!("duration {src:?} must be a number and a unit (s, m, h, d)"))?;
    let factor = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("duration {src:?} must end in s, m, h or d")),
    };
    if n <= 0 {
        return Err(format!("duration {src:?} must be positive"));
    }
    n.checked_mul(factor).ok_or_else(|| format!("duration {src:?} is too long"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn units() {
        assert_eq!(super::parse_ms("10m"), Ok(600_000));
        assert_eq!(super::parse_ms("2d"), Ok(172_800_000));
        assert!(super::parse_ms("10").is_err());
        assert!(super::parse_ms("0s").is_err());
        assert!(super::parse_ms("m").is_err());
    }
}
