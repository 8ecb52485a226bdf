//! Maps key paths (`verify[1].sql.expect`) to line and column in YAML text, for errors found after parsing.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (both 1-based) of every node, keyed by its path.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    nodes: HashMap<String, (usize, usize)>,
}

impl Locations {
    /// Index `text`; unparsable text yields an empty index (the parser reports that error itself).
    pub(crate) fn index(text: &str) -> Self {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut rx, false);
        Self { nodes: rx.nodes }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub(crate) fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.nodes.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

/// How deep any stackdrill file may nest mappings and sequences (the deepest real one is under 10).
pub(crate) const MAX_DEPTH: usize = 64;

/// Unclosed `[`/`{` anywhere in a file (even in text) past which it is refused without parsing.
const RAW_BRACKET_LIMIT: usize = 16 * MAX_DEPTH;

/// Where `text` first nests deeper than [`MAX_DEPTH`], or `None`. A pre-scan of the raw text in one pass
/// (linear time, whatever the text): it counts flow brackets and braces, and block nesting by indentation
/// and `- ` entries, outside quotes, comments and block scalars; it never gives up on text that would not
/// parse (a parser error is no reason to let a deep document through to a recursive parser). Then the
/// event parser (which keeps its own stack) counts again, for what the pre-scan reads loosely.
pub(crate) fn too_deep(text: &str) -> Option<(usize, usize)> {
    prescan_depth(text).or_else(|| too_deep_events(text))
}

/// The depth pre-scan of [`too_deep`]: 1-based line and column of the first character past the limit.
pub(crate) fn prescan_depth(text: &str) -> Option<(usize, usize)> {
    let mut scan = Prescan::default();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Err(column) = scan.line(line) {
            return Some((n + 1, column));
        }
    }
    None
}

#[derive(PartialEq, Clone, Copy, Default)]
enum Quote {
    #[default]
    None,
    Single,
    Double,
}

/// What [`prescan_depth`] carries from one line to the next.
#[derive(Default)]
struct Prescan {
    flow: usize,
    quote: Quote,
    /// Indentation columns of the open block collections.
    blocks: Vec<usize>,
    /// The indentation of the line that opened a block scalar (`|`, `>`): deeper lines are its text.
    block_scalar: Option<usize>,
}

impl Prescan {
    /// One line (without its line break); `Err` with the 1-based column of the first character past the limit.
    fn line(&mut self, line: &str) -> Result<(), usize> {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let blank = indent == bytes.len() || bytes[indent] == b'#';
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        // A line that starts inside a flow collection or a quoted scalar continues it: its indentation says
        // nothing about block nesting.
        if self.flow == 0 && self.quote == Quote::None {
            if blank {
                return Ok(());
            }
            i = self.blocks(bytes, indent)?;
        }
        let content_end = self.content(line, i, indent)?;
        // `- |` opens a block scalar too.
        if self.flow == 0 && self.quote == Quote::None && self.block_scalar.is_none() {
            let t = line[..content_end].trim_end();
            if t.ends_with("- |") || t.ends_with("- >") || t == "|" || t == ">" {
                self.block_scalar = Some(indent);
            }
        }
        Ok(())
    }

    /// The block collections a line at `indent` closes and opens; where its content starts.
    fn blocks(&mut self, bytes: &[u8], indent: usize) -> Result<usize, usize> {
        while self.blocks.last().is_some_and(|&top| top > indent) {
            self.blocks.pop();
        }
        if self.blocks.last() != Some(&indent) {
            self.blocks.push(indent);
        }
        let mut i = indent;
        // `- - - x`: each entry marker opens a sequence one level deeper on the same line.
        while i < bytes.len() && bytes[i] == b'-' && bytes.get(i + 1).is_none_or(|&b| b == b' ') {
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i < bytes.len() {
                self.blocks.push(i);
            }
            if self.blocks.len() > MAX_DEPTH {
                return Err(i + 1);
            }
        }
        if self.blocks.len() > MAX_DEPTH {
            return Err(indent + 1);
        }
        Ok(i)
    }

    /// The line's content from `i`: quotes, flow collections, a block scalar's `:` `|`; where the content
    /// ends (a comment starts).
    fn content(&mut self, line: &str, mut i: usize, indent: usize) -> Result<usize, usize> {
        let bytes = line.as_bytes();
        // Whether the next character starts a node (so `[` or `{` there opens a flow collection): at the
        // start of the content, after `- `, `: `, `? `, or anywhere inside a flow collection.
        let mut node_start = true;
        while i < bytes.len() {
            let b = bytes[i];
            if self.quote != Quote::None {
                i = self.quoted(bytes, i, &mut node_start);
                continue;
            }
            let prev_space = i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t';
            match b {
                // Where a comment starts: `source: # - |` opens no block scalar.
                b'#' if prev_space => return Ok(i),
                b'\'' | b'"' if node_start || self.flow > 0 => {
                    self.quote = if b == b'"' { Quote::Double } else { Quote::Single }
                }
                b'[' | b'{' if node_start || self.flow > 0 => {
                    self.flow += 1;
                    if self.blocks.len() + self.flow > MAX_DEPTH {
                        return Err(i + 1);
                    }
                    node_start = true;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    node_start = false;
                }
                b',' if self.flow > 0 => node_start = true,
                b' ' | b'\t' => {}
                // A tag or an anchor may stand before the node it names.
                b'!' | b'&' if node_start => {
                    while i + 1 < bytes.len() && !matches!(bytes[i + 1], b' ' | b'\t' | b'[' | b'{' | b',') {
                        i += 1;
                    }
                }
                b'-' | b':' | b'?' if bytes.get(i + 1).is_none_or(|&c| c == b' ' || c == b'\t') => {
                    node_start = true;
                    if b == b':' && self.flow == 0 {
                        let rest = line[i + 1..].trim_start();
                        if rest.starts_with('|') || rest.starts_with('>') {
                            self.block_scalar = Some(indent);
                            return Ok(bytes.len());
                        }
                    }
                }
                b':' if self.flow > 0 => node_start = true,
                _ => node_start = false,
            }
            i += 1;
        }
        Ok(bytes.len())
    }

    /// One character `bytes[i]` inside a quoted scalar; where the scan goes on.
    fn quoted(&mut self, bytes: &[u8], mut i: usize, node_start: &mut bool) -> usize {
        match (self.quote, bytes[i]) {
            (Quote::Single, b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 1,
            (Quote::Double, b'\\') => i += 1,
            (Quote::Single, b'\'') | (Quote::Double, b'"') => {
                self.quote = Quote::None;
                *node_start = false;
            }
            _ => {}
        }
        i + 1
    }
}

/// The event parser's count (gives up on text that does not parse; the pre-scan does not). The parser
/// looks ahead over every `[` that could start a key before it yields the first event, in time quadratic
/// in their number, so a text the pre-scan misread could keep it busy for minutes before its depth was
/// counted: first a raw count of unclosed brackets and braces (quotes, comments and block scalars
/// included, so with room to spare for text in them) refuses such a text in linear time.
fn too_deep_events(text: &str) -> Option<(usize, usize)> {
    let mut open = 0usize;
    for (n, line) in text.split('\n').enumerate() {
        for (col, b) in line.bytes().enumerate() {
            match b {
                b'[' | b'{' => {
                    open += 1;
                    if open > RAW_BRACKET_LIMIT {
                        return Some((n + 1, col + 1));
                    }
                }
                b']' | b'}' => open = open.saturating_sub(1),
                _ => {}
            }
        }
    }
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let (event, mark) = parser.next_token().ok()?;
        match event {
            Event::StreamEnd => return None,
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some((mark.line(), mark.col() + 1));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn the_prescan_finds_deep_flow_and_block_nesting_in_linear_time() {
        let started = std::time::Instant::now();
        let flow = "[".repeat(100_000);
        assert_eq!(prescan_depth(&flow), Some((1, MAX_DEPTH)));
        let flow = format!("name: x\nrestore: {}{}\n", "{a: ".repeat(100_000), "}".repeat(100_000));
        assert_eq!(prescan_depth(&flow).map(|(l, _)| l), Some(2));
        let block: String = (0..100_000).map(|i| format!("{}a:\n", " ".repeat(i % 200))).collect();
        assert!(prescan_depth(&block).is_some());
        let dashes = format!("{}x\n", "- ".repeat(100_000));
        assert_eq!(prescan_depth(&dashes), Some((1, 2 * MAX_DEPTH + 1)));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    }

    /// A comment that ends in `- |` opens no block scalar: the deep flow under it is still counted, and the
    /// file is refused at once (it once took the parser 115 s).
    #[test]
    fn a_commented_block_scalar_marker_hides_no_depth() {
        let text = format!("name: x\nsource: # - |\n  {}\n", "[".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(prescan_depth(&text).map(|(l, _)| l), Some(3));
        assert!(too_deep(&text).is_some());
        assert!(too_deep_events(&text).is_some(), "the fallback refuses it on its own");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(prescan_depth("a: 1 # - |\nb: 2\n"), None);
    }

    #[test]
    fn the_prescan_lets_real_files_through() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/drills")).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert_eq!(prescan_depth(&text), None, "{}", entry.path().display());
        }
        let shallow = "a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n\
                       b: \"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"\n\
                       c: x[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\
                       d: | \n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\
                       e: 1 # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n";
        assert_eq!(prescan_depth(shallow), None);
        let sixty_four = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert_eq!(prescan_depth(&format!("a: {sixty_four}\n")), None);
        assert!(prescan_depth(&format!("a: [{sixty_four}]\n")).is_some());
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<(String, Frame)>,
    nodes: HashMap<String, (usize, usize)>,
}

impl Receiver {
    /// The path of the node about to start, advancing the parent's cursor.
    fn child_path(&mut self) -> Option<String> {
        let (base, frame) = self.stack.last_mut()?;
        match frame {
            Frame::Map { key } => key.take().map(|k| join(base, &k)),
            Frame::Seq { next } => {
                let p = format!("{base}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }

    fn is_key_position(&self) -> bool {
        matches!(self.stack.last(), Some((_, Frame::Map { key: None })))
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_string() } else { format!("{base}.{key}") }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(value, ..) => {
                if self.is_key_position() {
                    if let Some((base, Frame::Map { key })) = self.stack.last_mut() {
                        // Record the key itself so an unknown key can be pointed at.
                        self.nodes.entry(join(base, &value)).or_insert(pos);
                        *key = Some(value);
                    }
                } else if let Some(path) = self.child_path() {
                    self.nodes.insert(path, pos);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() { String::new() } else { self.child_path().unwrap_or_default() };
                if !path.is_empty() {
                    self.nodes.insert(path.clone(), pos);
                }
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                };
                self.stack.push((path, frame));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(..) => {
                let _ = self.child_path();
            }
            _ => {}
        }
    }
}

static STATE_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Sets where stackdrill keeps local state, once, from the settings (`STACKDRILL_STATE_DIR`).
pub(crate) fn set_state_dir(dir: std::path::PathBuf) {
    let _ = STATE_DIR.set(dir);
}

/// Where stackdrill keeps local state (locks, the scheduler's records, the default signing key): what the
/// settings set, else `.stackdrill` in the project (see [`project_dir`]).
pub(crate) fn state_dir() -> std::path::PathBuf {
    STATE_DIR.get().cloned().unwrap_or_else(|| project_dir().join(".stackdrill"))
}

/// The project `start` is in, found upward as git and cargo find theirs: the nearest directory holding
/// `drills/` or `.git` (never `/` itself). `None` outside any project. Not `.stackdrill/`: commands create
/// that wherever they run, so a stray one (in /tmp, say) would capture every file below it.
pub(crate) fn project_root(start: &std::path::Path) -> Option<std::path::PathBuf> {
    let start = std::path::absolute(start).ok()?;
    start
        .ancestors()
        .filter(|d| d.parent().is_some())
        .find(|d| ["drills", ".git"].iter().any(|m| d.join(m).exists()))
        .map(std::path::Path::to_path_buf)
}

/// The project of the working directory, or the working directory itself (as an empty, relative path, so
/// `drills/x.yaml` reads as before) outside one or at its root: the default
/// report store (`reports/`), state (`.stackdrill/`) and `drills/` are found from here, so a command run in
/// a subdirectory uses the project's store and signing key, never a second chain of its own.
pub(crate) fn project_dir() -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    match project_root(&cwd) {
        Some(root) if root != cwd => root,
        _ => std::path::PathBuf::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_is_found_upward_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("drills")).unwrap();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        assert_eq!(project_root(&root.join("src/deep")), Some(root.clone()));
        assert_eq!(project_root(&root.join("drills")), Some(root.clone()));
        assert_eq!(project_root(&root), Some(root.clone()));
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(outside.join(".stackdrill")).unwrap();
        assert_eq!(project_root(&outside).filter(|r| r.starts_with(dir.path())), None, "a state dir is no project");
    }

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "a: 1\nverify:\n  - canary: {}\n  - sql: { name: x, expect: { equals: \"0\" } }\n";
        let loc = Locations::index(text);
        assert_eq!(loc.find("a"), Some((1, 4)));
        assert_eq!(loc.find("verify[1].sql.expect.equals"), Some((4, 39)));
        assert_eq!(loc.find("verify[0].canary"), Some((3, 13)));
        // Unknown child falls back to the nearest ancestor.
        assert_eq!(loc.find("verify[1].sql.nope"), Some((4, 10)));
    }
}
