import crypto from 'node:crypto';

/** The previous-hash of the first entry of every stream. */
export const GENESIS_HASH = '0'.repeat(64);

const sha256 = (data: string): string => crypto.hash('sha256', data, 'hex');

/**
 * A chain link: SHA-256 over the previous link and the entry's canonical body. The newline
 * cannot occur in canonical JSON's structure, so the two parts cannot be shifted into each other.
 */
export function linkHash(prevHash: string, body: string): string {
  return sha256(`${prevHash}\n${body}`);
}

/** An interior node of the Merkle tree, domain-separated from links by its prefix. */
function nodeHash(left: string, right: string): string {
  return sha256(`node\n${left}${right}`);
}

/** Links per Merkle leaf: the tree costs one hash per block instead of one per entry. */
export const LINKS_PER_LEAF = 16;

const leafHash = (links: string[]) => sha256(`leaf\n${links.join('')}`);

/**
 * The Merkle tree over a stream's link hashes. Each leaf hashes a block of 16 consecutive
 * links (the last block may be partial), and the tree is kept as its frontier: the roots of
 * the perfect subtrees over the full blocks, largest first, then the links of the partial
 * block. Appending is O(log n) and needs no earlier entry, so the head item carries the whole
 * tree state, and a verifier re-derives it in one pass.
 */
export class MerkleFrontier {
  private constructor(
    private readonly peaks: string[],
    private readonly block: string[],
    private count: number,
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier([], [], 0);
  }

  /** From a snapshot: the peaks followed by the partial block's links. */
  static restore(state: string[], count: number): MerkleFrontier {
    const partial = count % LINKS_PER_LEAF;
    const peaks = state.slice(0, state.length - partial);
    return new MerkleFrontier(peaks, state.slice(state.length - partial), count);
  }

  append(link: string): void {
    this.block.push(link);
    this.count += 1;
    if (this.block.length < LINKS_PER_LEAF) return;
    const fullBefore = this.count / LINKS_PER_LEAF - 1;
    this.peaks.push(leafHash(this.block.splice(0)));
    // Merge while the new leaf completes a perfect subtree: the low bits of the leaf count say how often.
    for (let n = fullBefore; n & 1; n >>= 1) {
      const right = this.peaks.pop() as string;
      const left = this.peaks.pop() as string;
      this.peaks.push(nodeHash(left, right));
    }
  }

  get size(): number {
    return this.count;
  }

  snapshot(): string[] {
    return [...this.peaks, ...this.block];
  }

  /** The root, folding from the smallest subtree upwards; the empty tree has GENESIS_HASH. */
  root(): string {
    const parts = this.block.length > 0 ? [...this.peaks, leafHash(this.block)] : this.peaks;
    if (parts.length === 0) return GENESIS_HASH;
    let acc = parts[parts.length - 1] as string;
    for (let i = parts.length - 2; i >= 0; i -= 1) acc = nodeHash(parts[i] as string, acc);
    return acc;
  }
}
