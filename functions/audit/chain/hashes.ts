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

/**
 * The Merkle tree over a stream's link hashes, kept as its frontier: the roots of the perfect
 * subtrees that make up the first n leaves, largest first (one per set bit of n). Appending is
 * O(log n) and needs no earlier leaf, so the head item carries the whole tree state.
 */
export class MerkleFrontier {
  constructor(
    private readonly peaks: string[] = [],
    private count = 0,
  ) {}

  static restore(peaks: string[], count: number): MerkleFrontier {
    return new MerkleFrontier([...peaks], count);
  }

  append(leaf: string): void {
    this.peaks.push(leaf);
    // Merge while the new leaf completes a perfect subtree: the low bits of count say how often.
    for (let n = this.count; n & 1; n >>= 1) {
      const right = this.peaks.pop() as string;
      const left = this.peaks.pop() as string;
      this.peaks.push(nodeHash(left, right));
    }
    this.count += 1;
  }

  get size(): number {
    return this.count;
  }

  snapshot(): string[] {
    return [...this.peaks];
  }

  /** The root, folding the peaks from the smallest upwards; the empty tree has GENESIS_HASH. */
  root(): string {
    if (this.peaks.length === 0) return GENESIS_HASH;
    let acc = this.peaks[this.peaks.length - 1] as string;
    for (let i = this.peaks.length - 2; i >= 0; i -= 1)
      acc = nodeHash(this.peaks[i] as string, acc);
    return acc;
  }
}
