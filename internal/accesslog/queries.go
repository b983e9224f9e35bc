package accesslog

// The access log's SQL, written once with "?" and rebound per engine.
const (
	// sqlNewest reads the newest segment's summary, to decide whether a
	// small batch joins it.
	sqlNewest = `SELECT id, events, first_at, last_at, format FROM access_log_segments ORDER BY id DESC LIMIT 1`

	sqlSegmentData = `SELECT data FROM access_log_segments WHERE id = ?`

	sqlInsert = `INSERT INTO access_log_segments (first_at, last_at, events, blocked, format, groups, categories, people,
		devices, host_grams, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	sqlUpdate = `UPDATE access_log_segments SET first_at = ?, last_at = ?, events = ?, blocked = ?, format = ?,
		groups = ?, categories = ?, people = ?, devices = ?, host_grams = ?, data = ? WHERE id = ?`

	sqlCount = `SELECT COALESCE(SUM(events), 0) FROM access_log_segments`

	// sqlPruneChunkCount and sqlPruneChunk count and delete the events
	// of the same segments (at most a chunk of them) that end before a
	// cutoff, oldest first.
	sqlPruneChunkCount = `SELECT COALESCE(SUM(events), 0) FROM (SELECT events FROM access_log_segments
		WHERE last_at < ? ORDER BY last_at, id LIMIT ?) AS chunk`

	sqlPruneChunk = `DELETE FROM access_log_segments WHERE id IN (SELECT id FROM access_log_segments
		WHERE last_at < ? ORDER BY last_at, id LIMIT ?)`

	// sqlScanData reads the data of the newest segments at or below an
	// id that may hold events in a time range (first_at <= to, last_at >=
	// from), when no summary is needed to skip them.
	sqlScanData = `SELECT id, data FROM access_log_segments
		WHERE id <= ? AND last_at >= ? AND first_at <= ? ORDER BY id DESC LIMIT ?`

	// sqlScanSummaries is sqlScanData for the summaries only; the %s are
	// "people", "devices", "host_grams" or NULL in their place, so that a
	// summary not needed is not read.
	sqlScanSummaries = `SELECT id, events, blocked, groups, categories, %s, %s, %s FROM access_log_segments
		WHERE id <= ? AND last_at >= ? AND first_at <= ? ORDER BY id DESC LIMIT ?`

	// sqlSegmentsData reads the data of chosen segments, newest first;
	// %s is the placeholders.
	sqlSegmentsData = `SELECT id, data FROM access_log_segments WHERE id IN (%s) ORDER BY id DESC`
)
