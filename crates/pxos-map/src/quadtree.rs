//! The spatial index: a quadtree over tile coordinates.
//!
//! The root covers every tile coordinate an `i64` pixel can fall in, so no
//! tile is ever left out (the seed's tree covered ±1e6 tiles and silently
//! dropped the rest). Insertion and queries walk with explicit stacks; the
//! depth is at most 64 whatever the input.

/// Tiles a leaf holds before it splits.
const LEAF_CAPACITY: usize = 8;

#[derive(Debug)]
struct Node {
    x: i128,
    y: i128,
    side: i128,
    tiles: Vec<(i64, i64)>,
    /// Indices of the four children (top-left, top-right, bottom-left, bottom-right).
    children: Option<[usize; 4]>,
}

impl Node {
    fn contains(&self, tx: i64, ty: i64) -> bool {
        let (tx, ty) = (i128::from(tx), i128::from(ty));
        tx >= self.x && tx < self.x + self.side && ty >= self.y && ty < self.y + self.side
    }

    fn overlaps(&self, x0: i128, y0: i128, x1: i128, y1: i128) -> bool {
        self.x < x1 && x0 < self.x + self.side && self.y < y1 && y0 < self.y + self.side
    }
}

/// A set of tile coordinates with region queries.
#[derive(Debug)]
pub struct QuadTree {
    nodes: Vec<Node>,
    len: usize,
}

impl Default for QuadTree {
    fn default() -> QuadTree {
        QuadTree::new()
    }
}

impl QuadTree {
    pub fn new() -> QuadTree {
        QuadTree {
            nodes: vec![Node {
                x: i128::from(i64::MIN),
                y: i128::from(i64::MIN),
                side: 1i128 << 64,
                tiles: Vec::new(),
                children: None,
            }],
            len: 0,
        }
    }

    /// Tiles indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a tile; `false` when it was already there.
    pub fn insert(&mut self, tx: i64, ty: i64) -> bool {
        let mut at = 0;
        while let Some(children) = self.nodes[at].children {
            at = children
                .into_iter()
                .find(|&c| self.nodes[c].contains(tx, ty))
                .unwrap_or(children[0]);
        }
        if self.nodes[at].tiles.contains(&(tx, ty)) {
            return false;
        }
        self.nodes[at].tiles.push((tx, ty));
        self.len += 1;
        if self.nodes[at].tiles.len() > LEAF_CAPACITY && self.nodes[at].side > 1 {
            self.split(at);
        }
        true
    }

    fn split(&mut self, at: usize) {
        // Split until no leaf holds more than its capacity (tiles may all fall in one quarter).
        let mut pending = vec![at];
        while let Some(at) = pending.pop() {
            let (x, y, half) = (self.nodes[at].x, self.nodes[at].y, self.nodes[at].side / 2);
            let first = self.nodes.len();
            for (dx, dy) in [(0, 0), (half, 0), (0, half), (half, half)] {
                self.nodes.push(Node {
                    x: x + dx,
                    y: y + dy,
                    side: half,
                    tiles: Vec::new(),
                    children: None,
                });
            }
            let children = [first, first + 1, first + 2, first + 3];
            for (tx, ty) in std::mem::take(&mut self.nodes[at].tiles) {
                if let Some(&c) = children.iter().find(|&&c| self.nodes[c].contains(tx, ty)) {
                    self.nodes[c].tiles.push((tx, ty));
                }
            }
            self.nodes[at].children = Some(children);
            for c in children {
                if self.nodes[c].tiles.len() > LEAF_CAPACITY && self.nodes[c].side > 1 {
                    pending.push(c);
                }
            }
        }
    }

    /// Tiles with `x0 <= tx < x1` and `y0 <= ty < y1`, sorted by (ty, tx).
    pub fn query(&self, x0: i128, y0: i128, x1: i128, y1: i128) -> Vec<(i64, i64)> {
        let mut found = Vec::new();
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at];
            if !node.overlaps(x0, y0, x1, y1) {
                continue;
            }
            match node.children {
                Some(children) => stack.extend(children),
                None => found.extend(node.tiles.iter().copied().filter(|&(tx, ty)| {
                    let (tx, ty) = (i128::from(tx), i128::from(ty));
                    tx >= x0 && tx < x1 && ty >= y0 && ty < y1
                })),
            }
        }
        found.sort_by_key(|&(tx, ty)| (ty, tx));
        found
    }

    /// Every tile, sorted by (ty, tx).
    pub fn all(&self) -> Vec<(i64, i64)> {
        self.query(
            i128::from(i64::MIN),
            i128::from(i64::MIN),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MAX) + 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_queries_find_exactly_the_tiles_inside() {
        let mut tree = QuadTree::new();
        let mut all = Vec::new();
        for ty in -20i64..20 {
            for tx in -20i64..20 {
                if (tx * 7 + ty * 13).rem_euclid(3) == 0 {
                    assert!(tree.insert(tx, ty));
                    all.push((tx, ty));
                }
            }
        }
        assert!(!tree.insert(0, 0) || !all.contains(&(0, 0)));
        tree.insert(i64::MIN, i64::MAX);
        tree.insert(i64::MAX, i64::MIN);
        for (x0, y0, x1, y1) in [
            (-3, -3, 4, 2),
            (-20, -20, 20, 20),
            (5, 5, 6, 6),
            (100, 100, 200, 200),
        ] {
            let got = tree.query(x0, y0, x1, y1);
            let mut want: Vec<(i64, i64)> = all
                .iter()
                .copied()
                .filter(|&(tx, ty)| {
                    i128::from(tx) >= x0
                        && i128::from(tx) < x1
                        && i128::from(ty) >= y0
                        && i128::from(ty) < y1
                })
                .collect();
            want.sort_by_key(|&(tx, ty)| (ty, tx));
            assert_eq!(got, want, "{x0},{y0}..{x1},{y1}");
        }
        assert_eq!(tree.len(), all.len() + 2);
        assert_eq!(tree.all().len(), all.len() + 2);
    }
}
