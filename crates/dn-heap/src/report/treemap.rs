//! Squarified treemap layout (Bruls, Huizing and van Wijk, 2000): pure geometry, no drawing.
//! Items are laid out in the order given (callers sort them biggest first), rows along the
//! shorter side, a row closed when adding the next item would worsen its worst aspect ratio.

/// An axis-aligned rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Rect {
        Rect { x, y, w, h }
    }

    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The rectangle shrunk by `top` at the top and `pad` on every side (never negative).
    pub fn inset(&self, pad: f64, top: f64) -> Rect {
        Rect {
            x: self.x + pad,
            y: self.y + pad + top,
            w: (self.w - 2.0 * pad).max(0.0),
            h: (self.h - 2.0 * pad - top).max(0.0),
        }
    }
}

/// Lays out `weights` in `bounds`: one rectangle per weight, in the same order, areas in
/// proportion to the weights. Zero, negative and non-finite weights get empty rectangles.
pub fn squarify(weights: &[f64], bounds: Rect) -> Vec<Rect> {
    let mut out = vec![Rect::new(bounds.x, bounds.y, 0.0, 0.0); weights.len()];
    let clean: Vec<f64> = weights
        .iter()
        .map(|&w| if w.is_finite() && w > 0.0 { w } else { 0.0 })
        .collect();
    let total: f64 = clean.iter().sum();
    if total <= 0.0 || bounds.area() <= 0.0 {
        return out;
    }
    // Weights scaled to areas.
    let scale = bounds.area() / total;
    let order: Vec<usize> = (0..clean.len()).filter(|&i| clean[i] > 0.0).collect();
    let mut free = bounds;
    let mut row: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let side = free.w.min(free.h);
        let candidate = clean[order[i]] * scale;
        let row_areas: Vec<f64> = row.iter().map(|&k| clean[k] * scale).collect();
        let mut with_next = row_areas.clone();
        with_next.push(candidate);
        if row.is_empty() || worst(&with_next, side) <= worst(&row_areas, side) {
            row.push(order[i]);
            i += 1;
        } else {
            free = place_row(&row, &row_areas, free, &mut out);
            row.clear();
        }
    }
    if !row.is_empty() {
        let row_areas: Vec<f64> = row.iter().map(|&k| clean[k] * scale).collect();
        place_row(&row, &row_areas, free, &mut out);
    }
    out
}

/// The worst aspect ratio of a row of `areas` laid along a side of length `side`.
fn worst(areas: &[f64], side: f64) -> f64 {
    let sum: f64 = areas.iter().sum();
    if areas.is_empty() || sum <= 0.0 || side <= 0.0 {
        return f64::INFINITY;
    }
    let (mut max, mut min) = (f64::MIN, f64::MAX);
    for &a in areas {
        max = max.max(a);
        min = min.min(a);
    }
    let s2 = side * side;
    let sum2 = sum * sum;
    (s2 * max / sum2).max(sum2 / (s2 * min))
}

/// Places a row along the shorter side of `free` and returns what is left.
fn place_row(row: &[usize], areas: &[f64], free: Rect, out: &mut [Rect]) -> Rect {
    let sum: f64 = areas.iter().sum();
    if free.w >= free.h {
        // A column at the left, as wide as the row needs.
        let width = if free.h > 0.0 { sum / free.h } else { 0.0 };
        let width = width.min(free.w);
        let mut y = free.y;
        for (k, &idx) in row.iter().enumerate() {
            let h = if sum > 0.0 {
                free.h * areas[k] / sum
            } else {
                0.0
            };
            out[idx] = Rect::new(free.x, y, width, h);
            y += h;
        }
        Rect::new(free.x + width, free.y, free.w - width, free.h)
    } else {
        // A row at the top, as tall as the row needs.
        let height = if free.w > 0.0 { sum / free.w } else { 0.0 };
        let height = height.min(free.h);
        let mut x = free.x;
        for (k, &idx) in row.iter().enumerate() {
            let w = if sum > 0.0 {
                free.w * areas[k] / sum
            } else {
                0.0
            };
            out[idx] = Rect::new(x, free.y, w, height);
            x += w;
        }
        Rect::new(free.x, free.y + height, free.w, free.h - height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn paper_example_areas_and_tiling() {
        // The paper's example: 6x4 with weights 6,6,4,3,2,2,1.
        let w = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let b = Rect::new(0.0, 0.0, 6.0, 4.0);
        let r = squarify(&w, b);
        for (rect, weight) in r.iter().zip(w) {
            assert!(close(rect.area(), weight), "{rect:?} for {weight}");
            assert!(rect.x >= -1e-9 && rect.y >= -1e-9);
            assert!(rect.x + rect.w <= 6.0 + 1e-9 && rect.y + rect.h <= 4.0 + 1e-9);
        }
        // As in the paper, the two sixes share the first column, 3 wide and 2 tall each.
        assert_eq!(r[0], Rect::new(0.0, 0.0, 3.0, 2.0));
        assert_eq!(r[1], Rect::new(0.0, 2.0, 3.0, 2.0));
        // No two rectangles overlap.
        for i in 0..r.len() {
            for j in i + 1..r.len() {
                let (a, c) = (r[i], r[j]);
                let ox = (a.x + a.w).min(c.x + c.w) - a.x.max(c.x);
                let oy = (a.y + a.h).min(c.y + c.h) - a.y.max(c.y);
                assert!(ox <= 1e-9 || oy <= 1e-9, "{a:?} overlaps {c:?}");
            }
        }
    }

    #[test]
    fn areas_are_proportional_and_fill_the_bounds() {
        let w = [100.0, 50.0, 25.0, 12.5, 6.25, 3.0, 1.0, 0.5];
        let b = Rect::new(10.0, 20.0, 800.0, 500.0);
        let r = squarify(&w, b);
        let total: f64 = w.iter().sum();
        let covered: f64 = r.iter().map(Rect::area).sum();
        assert!(close(covered, b.area()));
        for (rect, weight) in r.iter().zip(w) {
            assert!(close(rect.area(), b.area() * weight / total));
        }
    }

    #[test]
    fn squarified_cells_are_not_slivers() {
        let w: Vec<f64> = (1..=40).rev().map(|v| v as f64).collect();
        let r = squarify(&w, Rect::new(0.0, 0.0, 1000.0, 600.0));
        for rect in &r {
            let ratio = rect.w.max(rect.h) / rect.w.min(rect.h);
            assert!(ratio < 4.0, "{rect:?} ratio {ratio}");
        }
    }

    #[test]
    fn degenerate_inputs_give_empty_cells() {
        assert!(squarify(&[], Rect::new(0.0, 0.0, 10.0, 10.0)).is_empty());
        let r = squarify(&[0.0, f64::NAN, -1.0, 5.0], Rect::new(0.0, 0.0, 10.0, 10.0));
        assert_eq!(r.len(), 4);
        assert!(r[..3].iter().all(|c| c.area() == 0.0));
        assert!(close(r[3].area(), 100.0));
        let z = squarify(&[1.0, 2.0], Rect::new(0.0, 0.0, 0.0, 10.0));
        assert!(z.iter().all(|c| c.area() == 0.0));
    }
}
