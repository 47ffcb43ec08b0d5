/**
 * Three schema versions of `order.placed`, and the upcasters between them:
 *   v1 {order, user, product, amount, quantity}            amount in dollars
 *   v2 {order, customer: {id}, product, amount, quantity}  the user became a customer object
 *   v3 {order, customer: {id}, product, amount_cents, quantity}  money in integer cents
 * Pure functions of the data: replays through them stay byte-identical.
 */

/** v1 → v2: `user` moves to `customer.id`. */
export function placedV1ToV2(d: { user: string } & Record<string, unknown>): Record<string, unknown> {
  const { user, ...rest } = d;
  return { ...rest, customer: { id: user } };
}

/** v2 → v3: dollars become integer cents. */
export function placedV2ToV3(d: { amount: number } & Record<string, unknown>): Record<string, unknown> {
  const { amount, ...rest } = d;
  return { ...rest, amount_cents: Math.round(amount * 100) };
}
