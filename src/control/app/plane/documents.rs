//! The App's document library and knowledge base: create, list, search, get, update, and discovery.

use super::*;

pub(super) async fn create_document(
    plane: &AppControl,
    new: NewDocument,
) -> Result<DocumentCreate> {
    let mut metadata = new.ai_metadata.clone();
    if let Some(model) = &new.model {
        metadata.insert("model".into(), model_json(model));
    }
    metadata.insert("visibility".into(), json!(new.visibility));
    let body = json!({
        "title": new.title,
        "content": new.content,
        "format": new.format,
        "tags": new.tags,
        "category": new.category,
        "metadata": metadata,
    });
    let answer = plane
        .client
        .request(
            Method::POST,
            "/api/documents/ai",
            Some(&body),
            Call::Document,
        )
        .await
        .map_err(|error| unconfirmed(error, CREATE_UNCONFIRMED))?;
    Ok(DocumentCreate::Created(Box::new(Document {
        id: text(&answer, "documentId").unwrap_or_default(),
        title: new.title,
        description: None,
        content: String::new(),
        format: new.format,
        tags: new.tags,
        category: new.category,
        source: "ai_generated".into(),
        visibility: new.visibility,
        model: new.model,
        ai_metadata: new.ai_metadata,
        parent_id: None,
        file_name: None,
        content_hash: String::new(),
        size_bytes: new.content.len() as i64,
        version: 1,
        created_at: now_ms(),
        updated_at: now_ms(),
        updated_by: None,
        change_summary: None,
        update_reason: None,
        changes_from_prompt: None,
    })))
}

pub(super) async fn create_documents(
    plane: &AppControl,
    batch: Vec<NewDocument>,
) -> Vec<Result<DocumentCreate>> {
    let mut results = Vec::with_capacity(batch.len());
    for document in batch {
        results.push(plane.create_document(document).await);
    }
    results
}

pub(super) async fn list_documents(
    plane: &AppControl,
    list: DocumentList,
) -> Result<(Vec<Document>, u64)> {
    let mut query = Vec::new();
    filter_query(&mut query, &list, list.filter.source.is_some());
    let sort = match list.sort {
        DocumentSort::DateDesc => "date_desc",
        DocumentSort::DateAsc => "date_asc",
        DocumentSort::Title => "title",
        DocumentSort::Size => "size",
    };
    query.push(("sort".into(), sort.into()));
    query.push(("limit".into(), list.limit.to_string()));
    query.push(("offset".into(), list.offset.to_string()));
    let answer = plane
        .call(
            Method::GET,
            &format!("/api/documents?{}", query_string(&query)),
            None,
            Call::Read,
        )
        .await?;
    let documents: Vec<Document> = answer
        .get("documents")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(document_of).collect())
        .unwrap_or_default();
    let total = number(&answer, "total").map_or(documents.len() as u64, |n| n as u64);
    Ok((documents, total))
}

pub(super) async fn search_documents(
    plane: &AppControl,
    search: DocumentSearch,
) -> Result<Vec<DocumentHit>> {
    let filter = &search.filter;
    let mut filters = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            filters.insert(key.into(), value);
        }
    };
    put("modelName", filter.model_name.clone().map(Value::from));
    put(
        "modelProvider",
        filter.model_provider.clone().map(Value::from),
    );
    put(
        "dateFrom",
        filter
            .created_from
            .map(|at| Value::from(crate::control::time::iso(at))),
    );
    put(
        "dateTo",
        filter
            .created_to
            .map(|at| Value::from(crate::control::time::iso(at))),
    );
    put(
        "tags",
        (!filter.tags.is_empty()).then(|| json!(filter.tags.clone())),
    );
    put("source", filter.source.clone().map(Value::from));
    let mut body = json!({"query": search.query, "limit": search.limit});
    if !filters.is_empty() {
        body["filters"] = Value::Object(filters);
    }
    let answer = plane
        .call(
            Method::POST,
            "/api/documents/search",
            Some(body),
            Call::Read,
        )
        .await?;
    // The App's search has no visibility filter; each result says its visibility.
    let visible = |item: &&Value| {
        filter
            .visibility
            .as_deref()
            .is_none_or(|wanted| item.get("visibility").and_then(Value::as_str) == Some(wanted))
    };
    Ok(answer
        .get("results")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(visible)
                .map(|item| DocumentHit {
                    document: document_of(item),
                    snippet: text(item, "snippet").unwrap_or_default(),
                    passage: text(item, "snippet").unwrap_or_default(),
                    relevance: item
                        .get("relevanceScore")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                })
                .collect()
        })
        .unwrap_or_default())
}

pub(super) async fn get_document(
    plane: &AppControl,
    id: &str,
    include_content: bool,
    include_versions: bool,
) -> Result<Option<(Document, Vec<DocumentVersion>)>> {
    let path = format!(
        "/api/documents/{}?includeContent={include_content}&includeVersions={include_versions}",
        encode_path(id)
    );
    let answer = match plane
        .client
        .request(Method::GET, &path, None, Call::Read)
        .await
    {
        Ok(answer) => answer,
        Err(error) if is_status(&error, 404) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let versions = answer
        .get("versions")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| DocumentVersion {
                    version: number(item, "versionNumber").unwrap_or_default(),
                    content: String::new(),
                    content_hash: String::new(),
                    created_at: time(item, "createdAt").unwrap_or_default(),
                    created_by: model_of(item.get("createdByModel")),
                    change_summary: text(item, "changeSummary"),
                    update_reason: None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some((document_of(&answer), versions)))
}

pub(super) async fn update_document(
    plane: &AppControl,
    id: &str,
    update: DocumentUpdate,
) -> Result<Option<Document>> {
    let operation = match update.operation {
        UpdateOperation::Replace => "replace",
        UpdateOperation::Append => "append",
        UpdateOperation::Prepend => "prepend",
    };
    let mut body = json!({"documentId": id, "operation": operation, "content": update.content});
    let mut metadata = Map::new();
    if let Some(tags) = &update.tags {
        metadata.insert("tags".into(), json!(tags));
    }
    for (key, value) in [
        ("changeSummary", &update.change_summary),
        ("updateReason", &update.update_reason),
        ("changesFromPrompt", &update.changes_from_prompt),
    ] {
        if let Some(value) = value {
            metadata.insert(key.into(), json!(value));
        }
    }
    if let Some(model) = &update.model {
        metadata.insert("model".into(), model_json(model));
    }
    if !metadata.is_empty() {
        body["metadata"] = Value::Object(metadata);
    }
    let path = format!("/api/documents/{}", encode_path(id));
    match plane
        .client
        .request(Method::PATCH, &path, Some(&body), Call::Document)
        .await
    {
        Ok(answer) => Ok(Some(Document {
            id: text(&answer, "documentId").unwrap_or_else(|| id.to_owned()),
            version: number(&answer, "version").unwrap_or_default(),
            ..document_of(&json!({}))
        })),
        Err(error) if is_status(&error, 404) => Ok(None),
        // The App's CSRF check allows only its own origin (its `NEXTAUTH_URL`) and
        // plugged.in's; ours is the base URL's.
        Err(error) if error.code().is_some_and(|code| code.starts_with("CSRF_")) => {
            Err(ControlError::AppUnconfirmed {
                error,
                consequence: "the App accepts document updates only from its own origin \
                     (its NEXTAUTH_URL): give --pluggedin-api-base-url as that URL",
            })
        }
        Err(error) => Err(unconfirmed(error, UPDATE_UNCONFIRMED)),
    }
}

pub(super) async fn delete_document(_plane: &AppControl, _id: &str) -> Result<bool> {
    Err(ControlError::Invalid(
        "documents are deleted in the plugged.in App, not through the proxy".into(),
    ))
}

pub(super) async fn ask_knowledge_base(
    plane: &AppControl,
    query: &str,
) -> Result<Option<KnowledgeAnswer>> {
    let body = json!({"query": query, "includeMetadata": true});
    let answer = plane
        .client
        .request(Method::POST, "/api/rag/query", Some(&body), Call::Slow)
        .await?;
    Ok(Some(KnowledgeAnswer(answer)))
}

pub(super) async fn trigger_discovery(
    plane: &AppControl,
    server_uuid: Option<&str>,
    force_refresh: bool,
) -> Result<Option<String>> {
    let target = server_uuid.map_or_else(|| "all".to_owned(), encode_path);
    let answer = plane
        .client
        .request(
            Method::POST,
            &format!("/api/discover/{target}"),
            Some(&json!({"force_refresh": force_refresh})),
            Call::Slow,
        )
        .await?;
    Ok(Some(
        text(&answer, "message").unwrap_or_else(|| "Discovery process initiated.".into()),
    ))
}
