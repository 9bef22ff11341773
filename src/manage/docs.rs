//! `docs add|list|search|show|rm`: the document library in the store, for people. `docs add`
//! reads files and folders through `ingest` and stores them in batches (each document atomic
//! on its own, a batch committed together), skipping what is not a document and reporting what
//! failed; the rest read or remove what is stored. Every search reads the store, so a running
//! proxy needs no signal.

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::DocsAction;
use crate::control::time::{iso, locale};
use crate::control::{ControlPlane, DocumentCreate, DocumentFilter, DocumentList, DocumentSearch};
use crate::inspect::print_table;

/// How many files `docs add` reads and stores at a time: enough to amortise the trip to the
/// store's thread, few enough to keep memory small on large folders.
const ADD_BATCH: usize = 256;
/// A batch also ends once its content reaches this size: a batch is one transaction, and other
/// processes on the data dir wait for its write lock, so it must end well within their busy
/// timeout. Indexing runs at several MB per second, so a batch (this much plus at most one file
/// of 10 MB) holds the lock for a second or two; the commit a batch saves matters for small
/// files, not for large ones.
const ADD_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// From this many files on, `docs add` shows its progress.
const PROGRESS_FROM: usize = 200;

/// Runs one `docs` command.
pub(super) async fn run(
    action: DocsAction,
    control: &dyn ControlPlane,
) -> anyhow::Result<ExitCode> {
    match action {
        DocsAction::Add { paths, tags } => return add(&paths, &tags, control).await,
        DocsAction::List { limit, offset } => list(limit, offset, control).await?,
        DocsAction::Search {
            query,
            limit,
            tags,
            source,
        } => {
            let search = DocumentSearch {
                query,
                filter: DocumentFilter {
                    tags,
                    source,
                    ..DocumentFilter::default()
                },
                limit: limit.max(1),
            };
            search_documents(search, control).await?
        }
        DocsAction::Show { id, versions } => show(&id, versions, control).await?,
        DocsAction::Rm { id } => {
            if !control.delete_document(&id).await? {
                bail!("no document with id {id}");
            }
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `docs list`: a page of documents as a table.
async fn list(limit: u32, offset: u64, control: &dyn ControlPlane) -> anyhow::Result<()> {
    let (documents, total) = control
        .list_documents(DocumentList {
            limit: limit.max(1),
            offset,
            ..DocumentList::default()
        })
        .await?;
    if documents.is_empty() {
        println!("no documents (total {total})");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = documents
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                d.title.clone(),
                d.format.clone(),
                d.source.clone(),
                d.size_bytes.to_string(),
                iso(d.created_at),
            ]
        })
        .collect();
    print_table(
        ["ID", "TITLE", "FORMAT", "SOURCE", "BYTES", "CREATED"],
        &rows,
    );
    println!("\n{} of {total} document(s)", documents.len());
    Ok(())
}

/// `docs search`: the hits, best first, each with its snippet.
async fn search_documents(
    search: DocumentSearch,
    control: &dyn ControlPlane,
) -> anyhow::Result<()> {
    let query = search.query.clone();
    let hits = control.search_documents(search).await?;
    if hits.is_empty() {
        println!("nothing matches \"{query}\"");
    }
    for (index, hit) in hits.iter().enumerate() {
        println!(
            "{}. {} [{}] {:.1}%\n   {}\n",
            index + 1,
            hit.document.title,
            hit.document.id,
            hit.relevance * 100.0,
            hit.snippet
        );
    }
    Ok(())
}

/// `docs show`: a document's details, its versions when asked, and its content.
async fn show(id: &str, versions: bool, control: &dyn ControlPlane) -> anyhow::Result<()> {
    let Some((document, history)) = control.get_document(id, true, versions).await? else {
        bail!("no document with id {id}");
    };
    println!("{}\n", document.title);
    println!("id:         {}", document.id);
    println!("format:     {}", document.format);
    println!("source:     {}", document.source);
    println!("visibility: {}", document.visibility);
    if let Some(model) = &document.model {
        println!("model:      {} ({})", model.name, model.provider);
    }
    if !document.tags.is_empty() {
        println!("tags:       {}", document.tags.join(", "));
    }
    if let Some(file) = &document.file_name {
        println!("file:       {file}");
    }
    println!("version:    {}", document.version);
    println!("created:    {}", locale(document.created_at));
    println!("updated:    {}", locale(document.updated_at));
    println!("sha256:     {}", document.content_hash);
    for version in &history {
        let by = version
            .created_by
            .as_ref()
            .map(|m| format!(" by {}", m.name))
            .unwrap_or_default();
        let summary = version
            .change_summary
            .as_ref()
            .map(|s| format!(" - {s}"))
            .unwrap_or_default();
        println!(
            "  v{} {}{by}{summary}",
            version.version,
            iso(version.created_at)
        );
    }
    println!("\n{}", document.content);
    Ok(())
}

/// Reads and stores files in batches; one transaction per document, so a failure leaves no
/// trace of that document and does not stop the others. Files that are not documents (binary,
/// empty, too large, PDFs without text) are skipped; exits 1 only if a file failed (could not be
/// read or stored).
async fn add(
    paths: &[std::path::PathBuf],
    tags: &[String],
    control: &dyn ControlPlane,
) -> anyhow::Result<ExitCode> {
    let (files, mut failed) = crate::ingest::files(paths);
    let progress = files.len() >= PROGRESS_FROM;
    let (mut added, mut duplicates, mut skipped) = (0usize, Vec::new(), Vec::new());
    let (mut names, mut documents, mut bytes) = (Vec::new(), Vec::new(), 0usize);
    for (index, path) in files.iter().enumerate() {
        match crate::ingest::read(path) {
            Ok(mut document) => {
                document.tags = tags.to_vec();
                bytes += document.content.len();
                names.push(path.clone());
                documents.push(document);
            }
            Err(error) if error.is_skip() => skipped.push((path.clone(), error.to_string())),
            Err(error) => failed.push((path.clone(), error.to_string())),
        }
        let batch_done =
            index + 1 == files.len() || documents.len() >= ADD_BATCH || bytes >= ADD_BATCH_BYTES;
        if !batch_done {
            continue;
        }
        if !documents.is_empty() {
            let stored = control
                .create_documents(std::mem::take(&mut documents))
                .await;
            for (path, outcome) in names.drain(..).zip(stored) {
                match outcome {
                    Ok(DocumentCreate::Created(_)) => added += 1,
                    Ok(DocumentCreate::Duplicate(existing)) => {
                        duplicates.push((path, existing.id, existing.title));
                    }
                    Err(error) => failed.push((path, format!("cannot store it: {error}"))),
                }
            }
            bytes = 0;
        }
        if progress {
            eprint!("\r{}/{} files", index + 1, files.len());
        }
    }
    if progress {
        eprintln!();
    }
    println!(
        "added {added}, duplicates {}, skipped {}, failed {}",
        duplicates.len(),
        skipped.len(),
        failed.len()
    );
    for (path, id, title) in &duplicates {
        println!(
            "duplicate: {} (same content as {id} \"{title}\")",
            path.display()
        );
    }
    for (path, reason) in &skipped {
        println!("skipped: {}: {reason}", path.display());
    }
    for (path, reason) in &failed {
        println!("failed: {}: {reason}", path.display());
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
