-- What the agent declared, when the merchant directory gave the payment
-- another category (the one evaluated, in merchant_category).
ALTER TABLE payments ADD COLUMN declared_category TEXT;
