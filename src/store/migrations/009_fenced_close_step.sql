-- A closed step written by a server that leads others (src/health/leader.ts, WriteFence): the lease's
-- check and the step in one call, where they were a transaction of four round trips (BEGIN, the check,
-- the step, COMMIT). It locks the lease row FOR SHARE as the check did, until the call's own transaction
-- ends: no other server takes the lease over before the step is stored or refused.
--
-- Returns the lease row as it found it (lease_holder, lease_epoch, lease_live) with the deployment's row
-- of tradeswarm_close_step (migration 008) when the lease is p_holder's at p_epoch and live; else the
-- lease row alone, its deployment columns null, and nothing of the step is written; no row at all when
-- the lease row is gone. The caller deposes itself and refuses the write then, saying why.
CREATE FUNCTION tradeswarm_close_step_fenced(
  p_lease text, p_holder text, p_epoch bigint,
  p_id text, p_idx int, p_time_ms bigint, p_submissions jsonb, p_signals jsonb, p_bars jsonb, p_participants jsonb,
  p_now_ms bigint, p_opened jsonb, p_orders jsonb, p_fills jsonb, p_positions jsonb, p_equity double precision,
  p_cash double precision, p_checkpoints jsonb, p_snapshot jsonb, p_venue jsonb, p_chunk jsonb
) RETURNS TABLE (
  lease_holder text, lease_epoch bigint, lease_live boolean,
  id text, name text, env text, spec_version int, desired text, state text, closed_steps int, orders_count int,
  fills_count int, equity double precision, final_equity double precision, error text, created_at_ms bigint,
  updated_at_ms bigint, replicas jsonb, has_report boolean
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_lease record;
BEGIN
  SELECT l.holder, l.epoch, l.expires_at > statement_timestamp() AS live INTO v_lease
    FROM control_plane_lease AS l WHERE l.name = p_lease FOR SHARE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF v_lease.holder <> p_holder OR v_lease.epoch <> p_epoch OR NOT v_lease.live THEN
    RETURN QUERY SELECT v_lease.holder, v_lease.epoch, v_lease.live,
      NULL::text, NULL::text, NULL::text, NULL::int, NULL::text, NULL::text, NULL::int, NULL::int, NULL::int,
      NULL::double precision, NULL::double precision, NULL::text, NULL::bigint, NULL::bigint, NULL::jsonb, NULL::boolean;
    RETURN;
  END IF;
  RETURN QUERY SELECT v_lease.holder, v_lease.epoch, v_lease.live, s.*
    FROM tradeswarm_close_step(p_id, p_idx, p_time_ms, p_submissions, p_signals, p_bars, p_participants, p_now_ms, p_opened,
      p_orders, p_fills, p_positions, p_equity, p_cash, p_checkpoints, p_snapshot, p_venue, p_chunk) AS s;
END
$fn$;
