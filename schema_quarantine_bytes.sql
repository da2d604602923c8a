-- ouradb schema step 9: the quarantine keeps documents that could not be
-- decoded (a number out of range, a NaN, a lone UTF-16 surrogate, bytes that
-- are not UTF-8) exactly as received. Their page is stored without them.

-- raw_json holds such a document's text as received; when its bytes are not
-- UTF-8, raw_json has U+FFFD in place of each invalid sequence and this
-- column holds the bytes themselves.
ALTER TABLE quarantine ADD COLUMN raw_bytes BLOB; -- the document's exact bytes when they are not UTF-8 text (raw_json then replaces the invalid ones with U+FFFD); NULL otherwise
