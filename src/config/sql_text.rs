//! Reading a `sql` check's query as PostgreSQL's lexer would, far enough to tell one statement from
//! several: `;` inside a string, a quoted identifier, a dollar-quoted body or a comment does not end a
//! statement. A check is one statement, so nothing can follow a `commit`.

/// `Ok` when `query` is a single statement (a trailing `;` allowed); else what follows the first one.
pub(crate) fn single_statement(query: &str) -> Result<(), String> {
    let b = query.as_bytes();
    let mut i = 0;
    let mut ended_at: Option<usize> = None; // where the first statement ended
    while i < b.len() {
        let c = b[i];
        if ended_at.is_some()
            && !c.is_ascii_whitespace()
            && c != b';'
            && !(c == b'-' && b.get(i + 1) == Some(&b'-'))
            && !(c == b'/' && b.get(i + 1) == Some(&b'*'))
        {
            return Err(
                "holds more than one statement: a check is a single read-only query (nothing may follow a `;`, \
                 so no statement can run after a `commit`)"
                    .into(),
            );
        }
        // Each token's last byte: the scan goes on after it.
        i = match c {
            b'-' if b.get(i + 1) == Some(&b'-') => line_comment(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = block_comment(b, i);
                continue;
            }
            b'\'' => string(b, i)?,
            b'"' => quoted_identifier(b, i),
            // An identifier or number runs on through letters, digits, `_` and `$` (PostgreSQL reads
            // `a$$$` as one identifier): a `$` inside it opens no dollar quote.
            c if is_ident(c) => {
                while i + 1 < b.len() && (is_ident(b[i + 1]) || b[i + 1] == b'$') {
                    i += 1;
                }
                i
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => dollar_quoted(query, i),
            b';' => {
                ended_at = Some(i);
                i
            }
            _ => i,
        } + 1;
    }
    Ok(())
}

/// A `--` comment at `i`: its line's end.
fn line_comment(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// A `/* */` comment at `i`: the byte after it. Block comments nest in PostgreSQL.
fn block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// A `'…'` string at `i`: its closing quote.
fn string(b: &[u8], mut i: usize) -> Result<usize, String> {
    // E'…' strings take backslash escapes; '' is a quote in every string.
    let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident(b[i - 2]));
    i += 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        // A backslash in a plain '…' string is a character with standard_conforming_strings=on
        // and an escape with it off, which the restored database may set: `'\''` would then not
        // end there and a `;` after it would end a statement. Refused rather than guessed (the
        // check's session does not pin the setting): E'…' says what is meant either way.
        if !escapes && b[i] == b'\\' {
            return Err("holds a backslash in a plain '…' string, which reads differently when the \
                 restored database sets standard_conforming_strings=off: write E'…' for an escape"
                .into());
        }
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            break;
        }
        i += 1;
    }
    Ok(i)
}

/// A `"…"` identifier at `i`: its closing quote.
fn quoted_identifier(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        if b[i] == b'"' {
            if b.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            break;
        }
        i += 1;
    }
    i
}

/// A `$` at `i`: when it opens `$tag$ … $tag$` (the tag: letters, digits, underscores, not starting with a
/// digit), the closing tag's last byte; else `i`.
fn dollar_quoted(query: &str, i: usize) -> usize {
    let b = query.as_bytes();
    let start = i;
    let mut j = i + 1;
    while j < b.len() && is_ident(b[j]) && b[j] != b'$' {
        j += 1;
    }
    if j < b.len() && b[j] == b'$' && !b.get(start + 1).is_some_and(u8::is_ascii_digit) {
        let tag = &query[start..=j];
        return match query[j + 1..].find(tag) {
            Some(k) => j + 1 + k + tag.len() - 1,
            None => b.len(),
        };
    }
    i
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::single_statement;

    /// `$` after an identifier or number continues it (PostgreSQL's lexer): `a$$$` opens no dollar quote, so
    /// the `;`s after it end statements.
    #[test]
    fn a_dollar_inside_an_identifier_opens_no_quote() {
        assert!(single_statement("select 1 as a$$$; commit; create table pwn(); select 1 as b$$").is_err());
        assert!(single_statement("select 1 as a$b; commit").is_err());
        assert!(single_statement("select 1 as a$b").is_ok());
        assert!(single_statement("select $q$ ; $q$ as x").is_ok());
        assert!(single_statement("select 1 as x, $$;$$").is_ok());
    }

    /// With standard_conforming_strings=off `'\''` is one string holding a quote, so what follows is SQL.
    #[test]
    fn a_backslash_in_a_plain_string_is_refused() {
        let e = single_statement("select '\\''; commit; create table pwn(); select '\\''").unwrap_err();
        assert!(e.contains("standard_conforming_strings"), "{e}");
        assert!(single_statement("select 'a\\b'").is_err());
        assert!(single_statement("select E'\\'; x'").is_ok());
        assert!(single_statement("select 'it''s'").is_ok());
    }

    #[test]
    fn one_statement_is_told_from_several() {
        for ok in [
            "select 1",
            "select 1;",
            "select 1; -- done",
            "select 1 ; /* end */ ;",
            "select ';' as semi",
            "select 'it''s; fine'",
            "select E'a\\'; b'",
            "select \"a;b\" from t",
            "select $$ ; $$",
            "select $x$ ; $y$ ; $x$",
            "select 1 -- ; commit\n",
            "select /* ; /* nested ; */ still */ 1",
        ] {
            assert_eq!(single_statement(ok), Ok(()), "{ok}");
        }
        for bad in [
            "commit; create table x()",
            "select 1; select 2",
            "select 1;commit",
            "select ';'; drop table t",
            "select $$ $$; copy (select 1) to program 'x'",
            "select 1; /* c */ commit",
        ] {
            assert!(single_statement(bad).is_err(), "{bad}");
        }
    }
}
