-- History chunks of the deployments' venue snapshots (src/trading/history.ts): a venue snapshot holds
-- the trading session's live state and, in `history`, how many items of each append-only part of it
-- (orders that can no longer change, trades, equity points, fills, rejections) its chunks hold; each
-- chunk holds what settled since the venue snapshot before it. A venue snapshot rewrote the deployment's
-- whole history, growing with its age; it now writes what settled since the one before.
-- A snapshot without `history` (written before this migration) is whole and has no chunks.
CREATE TABLE venue_chunks (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  closed_steps int NOT NULL,
  chunk jsonb NOT NULL,
  PRIMARY KEY (deployment_id, closed_steps)
);

DROP FUNCTION tradeswarm_close_step(text, int, bigint, jsonb, jsonb, jsonb, jsonb, bigint, jsonb, jsonb, jsonb, jsonb, double precision, double precision, jsonb, jsonb, jsonb);

-- tradeswarm_close_step of migration 007, with the venue snapshot's history chunk (p_chunk, or null when
-- nothing settled since the one before), written with it: a venue snapshot is never stored without its
-- chunks. A venue snapshot whose history starts from nothing (the first, or one written by a control
-- plane that did not know what the stored chunks hold) replaces the chunks; one that follows chunks must
-- follow those stored (its `from` is the stored snapshot's `history`), or nothing of the step is written.
CREATE FUNCTION tradeswarm_close_step(
  p_id text, p_idx int, p_time_ms bigint, p_submissions jsonb, p_signals jsonb, p_bars jsonb, p_participants jsonb,
  p_now_ms bigint, p_opened jsonb, p_orders jsonb, p_fills jsonb, p_positions jsonb, p_equity double precision,
  p_cash double precision, p_checkpoints jsonb, p_snapshot jsonb, p_venue jsonb, p_chunk jsonb
) RETURNS TABLE (
  id text, name text, env text, spec_version int, desired text, state text, closed_steps int, orders_count int,
  fills_count int, equity double precision, final_equity double precision, error text, created_at_ms bigint,
  updated_at_ms bigint, replicas jsonb, has_report boolean
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  -- What the chunks before this venue snapshot's hold (counts by part): nothing when it starts the history again.
  v_base jsonb := COALESCE(p_chunk -> 'from', p_venue -> 'history', '{}'::jsonb);
BEGIN
  IF p_venue IS NOT NULL THEN
    IF NOT EXISTS (SELECT 1 FROM jsonb_each_text(v_base) AS h WHERE h.value <> '0') THEN
      DELETE FROM venue_chunks WHERE venue_chunks.deployment_id = p_id;
    ELSIF NOT EXISTS (SELECT 1 FROM venue_snapshots AS v WHERE v.deployment_id = p_id AND v.snapshot -> 'history' = v_base) THEN
      RAISE EXCEPTION 'the venue snapshot of deployment % at % closed steps follows history chunks other than those stored: write it from no history', p_id, p_venue ->> 'closedSteps';
    END IF;
    IF p_chunk IS NOT NULL THEN
      INSERT INTO venue_chunks (deployment_id, closed_steps, chunk) VALUES (p_id, (p_venue ->> 'closedSteps')::int, p_chunk);
    END IF;
  END IF;
  WITH
    step AS (
      INSERT INTO steps (deployment_id, idx, time_ms, submissions, signals, bars, participants, closed_at_ms, opened)
      VALUES (p_id, p_idx, p_time_ms, p_submissions, p_signals, p_bars, p_participants, p_now_ms, p_opened)),
    fill AS (
      SELECT f.* FROM ROWS FROM (jsonb_to_recordset(p_fills) AS ("clientOrderId" text, symbol text, side text, quantity double precision, price double precision, fee double precision, "timeMs" bigint))
        WITH ORDINALITY AS f("clientOrderId", symbol, side, quantity, price, fee, "timeMs", n)),
    placed AS (
      INSERT INTO orders (deployment_id, client_order_id, step, agent_id, symbol, side, quantity, status, reason, created_at_ms)
      SELECT p_id, o."clientOrderId", o.step, o."agentId", o.symbol, o.side, o.quantity,
        CASE WHEN o."clientOrderId" IN (SELECT "clientOrderId" FROM fill) THEN 'filled' ELSE o.status END, o.reason, p_now_ms
      FROM jsonb_to_recordset(p_orders) AS o("clientOrderId" text, step int, "agentId" text, symbol text, side text, quantity double precision, status text, reason text)
      ON CONFLICT (deployment_id, client_order_id) DO NOTHING RETURNING 1),
    marked AS (
      UPDATE orders SET status = 'filled' WHERE orders.deployment_id = p_id AND orders.client_order_id IN (SELECT "clientOrderId" FROM fill)),
    fills AS (
      INSERT INTO fills (deployment_id, seq, client_order_id, step, symbol, side, quantity, price, fee, time_ms)
      SELECT p_id, d.fills_count + fill.n - 1, fill."clientOrderId", p_idx, fill.symbol, fill.side, fill.quantity, fill.price, fill.fee, fill."timeMs"
      FROM fill, deployments AS d WHERE d.id = p_id),
    gone AS (
      DELETE FROM positions WHERE positions.deployment_id = p_id AND p_positions IS NOT NULL
        AND positions.symbol NOT IN (SELECT p.symbol FROM jsonb_to_recordset(p_positions) AS p(symbol text))),
    held AS (
      INSERT INTO positions (deployment_id, symbol, quantity)
      SELECT p_id, p.symbol, p.quantity FROM jsonb_to_recordset(p_positions) AS p(symbol text, quantity double precision)
      ON CONFLICT (deployment_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity),
    point AS (
      INSERT INTO equity (deployment_id, step, time_ms, equity, cash) VALUES (p_id, p_idx, p_time_ms, p_equity, p_cash)),
    checkpoint AS (
      INSERT INTO checkpoints (deployment_id, agent_id, step, replay_from, state, created_at_ms)
      SELECT p_id, c."agentId", p_idx, c."replayFrom", c.state, p_now_ms
      FROM jsonb_to_recordset(p_checkpoints) AS c("agentId" text, "replayFrom" int, state text)
      ON CONFLICT (deployment_id, agent_id) DO UPDATE
        SET step = EXCLUDED.step, replay_from = EXCLUDED.replay_from, state = EXCLUDED.state, created_at_ms = EXCLUDED.created_at_ms),
    venue AS (
      INSERT INTO venue_snapshots (deployment_id, closed_steps, snapshot, created_at_ms)
      SELECT p_id, (p_venue->>'closedSteps')::int, p_venue, p_now_ms WHERE p_venue IS NOT NULL
      ON CONFLICT (deployment_id) DO UPDATE
        SET closed_steps = EXCLUDED.closed_steps, snapshot = EXCLUDED.snapshot, created_at_ms = EXCLUDED.created_at_ms)
  UPDATE deployments SET
    closed_steps = p_idx + 1, snapshot = p_snapshot, state = 'running',
    orders_count = deployments.orders_count + (SELECT count(*) FROM placed),
    fills_count = deployments.fills_count + jsonb_array_length(p_fills),
    equity = p_equity, updated_at_ms = p_now_ms
  WHERE deployments.id = p_id;
  RETURN QUERY
    SELECT d.id, d.name, d.env, d.spec_version, d.desired, d.state, d.closed_steps, d.orders_count, d.fills_count, d.equity,
      (d.report->>'finalEquity')::double precision, d.error, d.created_at_ms, d.updated_at_ms, d.replicas, d.report IS NOT NULL
    FROM deployments AS d WHERE d.id = p_id;
END
$fn$;
