/**
 * Settings of every client of the sharded layout: an insert through a Distributed table is stored
 * on its shard before the answer (so an acknowledged insert is durable and its deduplication token
 * applies there), and a subquery over a Distributed table inside IN/JOIN runs once, globally
 * (the default, 'deny', refuses the documented queries that use one).
 */
export const SHARDED_CLIENT_SETTINGS = { distributed_foreground_insert: 1, distributed_product_mode: 'global' } as const
