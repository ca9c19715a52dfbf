//! Identifiers: a readable prefix and a ULID, so ids sort by creation time
//! (cursor pagination relies on it) and say what they name.

pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_prefix_and_sort_by_time() {
        let a = super::new("pay");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new("pay");
        assert!(a.starts_with("pay_") && a.len() == 30);
        assert!(a < b);
    }
}
