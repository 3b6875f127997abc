//! The PDF report of a finished session (`GET /v3/session/{id}/generate-pdf/`): the session,
//! for a clone its provenance, every recorded block item by item, and the reviews. Written with
//! `pdf-writer` in the PDF base font Helvetica (nothing embedded), A4, text in WinAnsi encoding
//! (characters outside it print as `?`).

use handoff_domain::session::LogEntry;
use handoff_domain::{FeatureBlock, SessionRecord};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use serde_json::Value;

use crate::decision::timestamp;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BODY_SIZE: f32 = 9.5;
const LEADING: f32 = 12.5;
/// Characters per body line: Helvetica's widest common glyphs average about 0.55 em.
const LINE_CHARS: usize = ((PAGE_WIDTH - 2.0 * MARGIN) / (BODY_SIZE * 0.55)) as usize;
/// A longer value prints its start and how long it is.
const VALUE_MAX_CHARS: usize = 2_000;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// One line of the report.
enum Line {
    Title(String),
    Heading(String),
    Text(String),
    Gap,
}

/// The report of `record`; `import` is the clone's `imported` event, when it is a clone.
pub fn render(record: &SessionRecord, import: Option<&LogEntry>) -> Vec<u8> {
    let mut lines = Vec::new();
    let s = &record.session;
    lines.push(Line::Title(format!("Verification report: session {}", s.session_number)));
    lines.push(Line::Gap);
    let field = |name: &str, value: &str| Line::Text(format!("{name}: {value}"));
    lines.push(field("Status", s.status.as_str()));
    lines.push(field("Session", &s.id.to_string()));
    lines.push(field("Kind", s.kind.as_str()));
    lines.push(field("Workflow", &s.workflow_id.to_string()));
    lines.push(field("Features", &s.features.join(", ")));
    if let Some(vendor_data) = &s.vendor_data {
        lines.push(field("Vendor data", vendor_data.as_str()));
    }
    lines.push(field("Created", &timestamp(s.created_at)));

    if let Some(source) = s.shared_from_session {
        lines.push(Line::Gap);
        lines.push(Line::Heading("Provenance".into()));
        lines.push(field("Imported from session", &source.to_string()));
        if let Some(import) = import {
            let details = import.details.as_ref();
            let detail = |key: &str| details.and_then(|d| d.get(key)).cloned();
            if let Some(Value::String(application)) = detail("source_application_id") {
                lines.push(field("Of application", &application));
            }
            lines.push(field("Imported", &timestamp(import.created_at)));
            if let Some(Value::Bool(trust)) = detail("trust_review") {
                lines.push(field("trust_review", if trust { "true" } else { "false" }));
            }
            if let Some(status) = import.new_status {
                lines.push(field("Status on import", status.as_str()));
            }
        }
    }

    for block in FeatureBlock::for_kind(s.kind) {
        let Some(items) = record.block(*block) else {
            continue;
        };
        lines.push(Line::Gap);
        lines.push(Line::Heading(format!("{} ({})", block.title(), block.v3_key())));
        if items.is_empty() {
            lines.push(Line::Text("No results.".into()));
        }
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                lines.push(Line::Gap);
            }
            let members: serde_json::Map<String, Value> =
                serde_json::from_str(item.json().get()).unwrap_or_default();
            for (name, value) in members {
                let text = match value {
                    Value::String(text) => text,
                    Value::Null => "-".to_owned(),
                    other => other.to_string(),
                };
                lines.push(field(&name, &shortened(&text)));
            }
        }
    }

    lines.push(Line::Gap);
    lines.push(Line::Heading("Reviews".into()));
    if record.reviews.is_empty() {
        lines.push(Line::Text("None.".into()));
    }
    for review in &record.reviews {
        lines.push(Line::Text(format!(
            "{}  {}  {}",
            timestamp(review.created_at),
            review.new_status.as_str(),
            review.user
        )));
        if let Some(comment) = &review.comment {
            lines.push(Line::Text(format!("Comment: {}", shortened(comment))));
        }
    }
    write(&lines)
}

fn shortened(text: &str) -> String {
    let count = text.chars().count();
    if count <= VALUE_MAX_CHARS {
        return text.to_owned();
    }
    let start: String = text.chars().take(VALUE_MAX_CHARS).collect();
    format!("{start}... ({count} characters in all)")
}

/// `text` in WinAnsi, the encoding the base fonts are declared with.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '…' => 0x85,
            _ => b'?',
        })
        .collect()
}

/// Splits `text` into lines of at most `LINE_CHARS` characters, at spaces where it can.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        loop {
            let used = current.chars().count();
            let room = LINE_CHARS.saturating_sub(used + usize::from(used > 0));
            if word.chars().count() <= room {
                if used > 0 {
                    current.push(' ');
                }
                current.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut current));
                continue;
            }
            let head: String = word.chars().take(LINE_CHARS).collect();
            word = word.chars().skip(LINE_CHARS).collect();
            lines.push(head);
        }
    }
    lines.push(current);
    lines
}

/// Lays the lines out on A4 pages and writes the document.
fn write(lines: &[Line]) -> Vec<u8> {
    let mut pages: Vec<Content> = Vec::new();
    let mut y = 0.0;
    let mut page: Option<Content> = None;
    for line in lines {
        let (font, size, advance, texts) = match line {
            Line::Title(text) => (BOLD, 16.0, 22.0, vec![text.clone()]),
            Line::Heading(text) => (BOLD, 12.0, 17.0, vec![text.clone()]),
            Line::Text(text) => (REGULAR, BODY_SIZE, LEADING, wrap(text)),
            Line::Gap => (REGULAR, BODY_SIZE, LEADING / 2.0, Vec::new()),
        };
        if texts.is_empty() {
            y -= advance;
            continue;
        }
        for text in texts {
            if page.is_none() || y - advance < MARGIN {
                if let Some(full) = page.take() {
                    pages.push(full);
                }
                page = Some(Content::new());
                y = PAGE_HEIGHT - MARGIN;
            }
            y -= advance;
            if let Some(content) = page.as_mut() {
                content.begin_text();
                content.set_font(font, size);
                content.next_line(MARGIN, y);
                content.show(Str(&win_ansi(&text)));
                content.end_text();
            }
        }
    }
    pages.extend(page);

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let first = 5;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|n| Ref::new(first + 2 * n as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    for (id, base) in [(regular, Name(b"Helvetica")), (bold, Name(b"Helvetica-Bold"))] {
        pdf.type1_font(id).base_font(base).encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    for (content, id) in pages.into_iter().zip(&page_ids) {
        let content_id = Ref::new(id.get() + 1);
        let mut page = pdf.page(*id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        page.resources().fonts().pair(REGULAR, regular).pair(BOLD, bold);
        drop(page);
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}
