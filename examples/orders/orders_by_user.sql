-- orders_by_user as a SQL processor: the same view as orders_by_user_v2.ts (refunds subtract).
-- kappa: name = orders_by_user
-- kappa: subjects = order.*

-- schema
CREATE TABLE totals (user_id TEXT PRIMARY KEY, orders INTEGER NOT NULL, amount REAL NOT NULL);

-- on order.placed
INSERT INTO totals (user_id, orders, amount) VALUES (:user, 1, :amount)
  ON CONFLICT (user_id) DO UPDATE SET orders = orders + 1, amount = round(amount + excluded.amount, 2);

-- on order.refunded
UPDATE totals SET orders = orders - 1, amount = round(amount - :amount, 2) WHERE user_id = :user;

-- query top_users
SELECT user_id, orders, amount FROM totals ORDER BY amount DESC, user_id LIMIT :n
