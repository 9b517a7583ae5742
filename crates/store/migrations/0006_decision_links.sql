-- Decision links: a single-use token in an approver's work notification that opens one request for one person.
-- The request it opens is the token's subject; sign-in links and API tokens have none.
ALTER TABLE console_tokens ADD COLUMN subject TEXT;
