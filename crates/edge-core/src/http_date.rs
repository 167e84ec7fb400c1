//! HTTP dates (RFC 9110 §5.6.7): the preferred IMF-fixdate and the two obsolete forms a
//! recipient must still accept, RFC 850 and asctime. Parsed by hand into Unix seconds: a date
//! crate would cost the wasm more than these forty lines.
//!
//! - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
//! - RFC 850:     `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit years: RFC 9110 §5.6.7 says a
//!   year more than 50 years ahead is the previous century)
//! - asctime:     `Sun Nov  6 08:49:37 1994`

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Seconds since the Unix epoch, or `None` for anything that is not an HTTP date.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let text = text.trim();
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        // IMF-fixdate: weekday, DD Mon YYYY HH:MM:SS GMT
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') && year.len() == 4 => {
            (number(day, 2)?, month_index(month)?, number(year, 4)?, *time)
        }
        // RFC 850: weekday, DD-Mon-YY HH:MM:SS GMT
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            (number(day, 2)?, month_index(month)?, two_digit_year(year)?, *time)
        }
        // asctime: weekday Mon D HH:MM:SS YYYY (the day is space-padded)
        [_weekday, month, day, time, year] if year.len() == 4 => (
            day.parse().ok().filter(|d: &u64| (1..=31).contains(d))?,
            month_index(month)?,
            number(year, 4)?,
            *time,
        ),
        _ => return None,
    };
    let mut clock = time.split(':');
    let (hour, minute, second) =
        (number(clock.next()?, 2)?, number(clock.next()?, 2)?, number(clock.next()?, 2)?);
    if clock.next().is_some()
        || hour > 23
        || minute > 59
        || second > 60
        || day == 0
        || day > 31
        || year < 1970
    {
        return None;
    }
    let days = days_from_civil(year, month + 1, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn number(text: &str, digits: usize) -> Option<u64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

fn month_index(text: &str) -> Option<u64> {
    MONTHS.iter().position(|m| *m == text).map(|i| i as u64)
}

fn two_digit_year(text: &str) -> Option<u64> {
    let yy = number(text, 2)?;
    // Interpreted against 2026's window: 00–76 are 20xx, 77–99 are 19xx.
    Some(if yy <= 76 { 2000 + yy } else { 1900 + yy })
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), for years ≥ 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_name_the_same_second() {
        let expected = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
    }

    #[test]
    fn known_instants() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(parse_http_date("Sun, 29 Nov 2026 09:28:18 GMT"), Some(1_795_944_498));
        assert_eq!(parse_http_date("Wednesday, 09-Dec-26 00:00:00 GMT"), Some(1_796_774_400));
    }

    #[test]
    fn anything_else_is_not_a_date() {
        for bad in [
            "",
            "0",
            "-1",
            "tomorrow",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun Nov 32 08:49:37 1994",
            "Sunday, 06-Nov-1994-1 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
