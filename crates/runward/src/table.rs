//! Plain-text tables for terminals: columns padded to their widest cell, two spaces apart.
//!
//! Cells of any length are fine: padding is written by hand, never with a format width
//! (which is limited to 65 535), so a huge cell makes a wide line, not a panic.

/// Renders `header` and `rows` as lines ending in `\n`. Every column but the last is padded
/// to its widest cell (in characters); trailing spaces are trimmed. Rows shorter than the
/// header leave their missing cells empty.
pub fn render<R: AsRef<[S]>, S: AsRef<str>>(header: &[&str], rows: &[R]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.as_ref().chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let start = out.len();
        for (i, cell) in cells.take(columns).enumerate() {
            out.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(
            &mut row
                .as_ref()
                .iter()
                .map(AsRef::as_ref)
                .chain(std::iter::repeat(""))
                .take(columns),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cells_hold() {
        let rows = vec![vec!["a", "pass", "first"], vec!["é-long-name", "fail", ""]];
        assert_eq!(
            render(&["NAME", "STATUS", "OUTPUT"], &rows),
            "NAME         STATUS  OUTPUT\na            pass    first\né-long-name  fail\n"
        );
    }

    #[test]
    fn a_huge_cell_makes_a_wide_line_not_a_panic() {
        let huge = "x".repeat(1 << 20);
        let text = render(&["A", "B"], &[vec![huge.as_str(), "b"]]);
        assert!(text.lines().nth(1).unwrap().ends_with("  b"));
        assert_eq!(text.lines().next().unwrap().len(), (1 << 20) + 3);
    }
}
