//! ASCII tables exactly as etcdctl 3.4 draws them (its vendored
//! olekukonko/tablewriter with headers upper-cased and centred, cells
//! right-aligned, cells wider than 30 columns wrapped at spaces).

const MAX_CELL_WIDTH: usize = 30;

/// Renders a table; every line ends with a newline.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h).min(MAX_CELL_WIDTH)).collect();
    // Cells are wrapped against the column width known when their row is
    // added, as tablewriter does, so later rows can widen a column.
    let mut wrapped_rows: Vec<Vec<Vec<String>>> = Vec::new();
    for row in rows {
        let mut cells = Vec::new();
        for (i, cell) in row.iter().enumerate() {
            if i >= widths.len() {
                widths.push(0);
            }
            let w = width(cell).min(MAX_CELL_WIDTH);
            if widths[i] < w || widths[i] == 0 {
                widths[i] = w;
            }
            let lines = wrap(cell, widths[i]);
            let widest = lines.iter().map(|l| width(l)).max().unwrap_or(0);
            widths[i] = widths[i].max(widest);
            cells.push(lines);
        }
        wrapped_rows.push(cells);
    }

    let border: String = {
        let mut line = String::from("+");
        for w in &widths {
            line.push_str(&"-".repeat(w + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let mut out = border.clone();
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let title = headers.get(i).map(|h| title(h)).unwrap_or_default();
        out.push(' ');
        out.push_str(&center(&title, *w));
        out.push_str(" |");
    }
    out.push('\n');
    out.push_str(&border);
    for cells in &wrapped_rows {
        let height = cells.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            out.push('|');
            for (i, cell) in cells.iter().enumerate() {
                // Shorter cells are filled with two spaces, as tablewriter does.
                let text = cell.get(line).map_or("  ", String::as_str);
                out.push(' ');
                out.push_str(&" ".repeat(widths[i].saturating_sub(width(text))));
                out.push_str(text);
                out.push_str(" |");
            }
            out.push('\n');
        }
    }
    out.push_str(&border);
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// tablewriter's `Title`: `_` and `.` become spaces, trimmed, upper case.
fn title(header: &str) -> String {
    header.replace(['_', '.'], " ").trim().to_uppercase()
}

/// Centred, the extra space going right.
fn center(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

/// tablewriter's `WrapString`: words (split on single spaces) into lines of
/// at most `limit` columns with the least raggedness.
fn wrap(s: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = s.split(' ').flat_map(|w| w.split('\n')).collect();
    let limit = words.iter().map(|w| w.len()).fold(limit, usize::max);
    let n = words.len();
    let lengths: Vec<usize> = words.iter().map(|w| width(w)).collect();
    // span(i, j): the length of words i..=j joined by single spaces.
    let span = |i: usize, j: usize| lengths[i..=j].iter().sum::<usize>() + (j - i);
    const TOO_LONG_PENALTY: i64 = 100_000;
    let mut cost = vec![i64::from(i32::MAX); n];
    let mut next_break = vec![n; n];
    for i in (0..n).rev() {
        if span(i, n - 1) <= limit {
            cost[i] = 0;
            next_break[i] = n;
            continue;
        }
        for j in i + 1..n {
            let len = span(i, j - 1);
            let d = limit as i64 - len as i64;
            let mut c = d * d + cost[j];
            if len > limit {
                c += TOO_LONG_PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                next_break[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        lines.push(words[i..next_break[i]].join(" "));
        i = next_break[i];
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcdctl_layout() {
        let rows = vec![vec!["127.0.0.1:41379".to_string(), "2389052952".to_string()]];
        let expected = "\
+-----------------+------------+
|    ENDPOINT     |    HASH    |
+-----------------+------------+
| 127.0.0.1:41379 | 2389052952 |
+-----------------+------------+
";
        assert_eq!(render(&["endpoint", "hash"], &rows), expected);
    }

    #[test]
    fn empty_cells_and_no_rows() {
        let rows = vec![vec!["a".to_string(), String::new()]];
        assert_eq!(
            render(&["x", "error"], &rows),
            "+---+-------+\n| X | ERROR |\n+---+-------+\n| a |       |\n+---+-------+\n"
        );
        assert_eq!(render(&["x"], &[]), "+---+\n| X |\n+---+\n+---+\n");
    }

    #[test]
    fn long_cells_wrap_at_spaces() {
        let long = "etcdserver: mvcc: database space exceeded, etcdserver: no leader".to_string();
        let expected = "\
+--------------------------------+
|             ERRORS             |
+--------------------------------+
|     etcdserver: mvcc: database |
| space exceeded, etcdserver: no |
|                         leader |
+--------------------------------+
";
        assert_eq!(render(&["errors"], &[vec![long]]), expected);
    }
}
