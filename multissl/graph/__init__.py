"""Graph adapter: GraphMAE node representations (PyG GAT) and XSimGCL / LightGCN recommendation."""
