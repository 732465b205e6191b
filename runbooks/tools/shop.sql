-- The database the PostgreSQL example backs up and restores (tools/pg_backup.sh): generated, so
-- every machine gets the same rows. The row counts are checked after the restore.
CREATE DATABASE shop;
\connect shop
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
INSERT INTO customers
  SELECT i, 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 20000) AS i;
CREATE TABLE products (id int PRIMARY KEY, title text NOT NULL, price_cents int NOT NULL);
INSERT INTO products
  SELECT i, 'product ' || i, 100 + (i * 7919) % 100000 FROM generate_series(1, 5000) AS i;
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers,
  product_id int NOT NULL REFERENCES products,
  qty int NOT NULL,
  placed_at timestamptz NOT NULL
);
INSERT INTO orders
  SELECT i, 1 + (i * 31) % 20000, 1 + (i * 17) % 5000, 1 + i % 5,
         timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 200000) AS i;
CREATE INDEX orders_customer ON orders (customer_id);
