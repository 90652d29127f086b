"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "graph.graphmae": ("multissl.graph.tasks:GraphMAETask",
                       "GraphMAE masked graph autoencoder (GAT) on one graph, linear-probe node classification"),
    "graph.xsimgcl": ("multissl.graph.tasks:XSimGCLTask",
                      "XSimGCL recommendation on user-item interactions, full-ranking Recall@K / NDCG@K"),
    "graph.lightgcn": ("multissl.graph.tasks:LightGCNTask",
                       "LightGCN recommendation (layer-0..K mean, L2 on ego embeddings), full-ranking Recall@K / NDCG@K"),
}
BENCHES = {
    "graph": ("multissl.graph.bench:main",
              "seconds per epoch: XSimGCL vs LightGCN, our LightGCN vs PyG's LightGCN, GraphMAE on Cora"),
}
