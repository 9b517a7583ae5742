-- The approver's notices had a notifier's channel name, `notify:approvals`, which a notifier named `approvals`
-- would have shared; they have their own now.
UPDATE outbox SET channel = 'approval-notices' WHERE channel = 'notify:approvals';
