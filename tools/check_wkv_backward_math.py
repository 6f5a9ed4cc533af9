# Checks the backward formulas used by kernels/src/wkv_backward.cu (states recomputed, log-decay gradient by the
# cumulative-sum identity of spec §2.5.3) against autograd of the per-timestep recurrence (spec §2.5.1), in fp64 on
# CPU. Run: python3 tools/check_wkv_backward_math.py  (needs torch; prints the relative error of every gradient).
import sys
import torch
torch.manual_seed(0)
def ref(r,k,v,lw,u,s0):
    T,N = r.shape; S = s0.clone(); ys=[]
    for t in range(T):
        ys.append(r[t] @ (u[:,None]*k[t][:,None]*v[t][None,:] + S))
        S = torch.exp(lw[t])[:,None]*S + k[t][:,None]*v[t][None,:]
    return torch.stack(ys), S
worst=0.0
for T in [1,2,7,50]:
    N=8; d=torch.float64
    r,k,v=[torch.randn(T,N,dtype=d,requires_grad=True) for _ in range(3)]
    lw=(-torch.exp(torch.randn(T,N,dtype=d)*0.5-0.5)).requires_grad_()
    u=torch.randn(N,dtype=d,requires_grad=True); s0=torch.randn(N,N,dtype=d,requires_grad=True)
    y,ST=ref(r,k,v,lw,u,s0); gy=torch.randn_like(y); gs=torch.randn_like(ST)
    (y*gy).sum().add_((ST*gs).sum()).backward()
    with torch.no_grad():
        w=lw.exp(); S=s0.clone(); gr=torch.zeros_like(r); dE=torch.zeros_like(r); gu=torch.zeros_like(u)
        for t in range(T):
            gyv=(gy[t]*v[t]).sum(); inter=S@gy[t]
            gr[t]=inter+u*k[t]*gyv; dE[t]=r[t]*inter; gu+=r[t]*k[t]*gyv
            S=w[t][:,None]*S+k[t][:,None]*v[t][None,:]
        G=gs.clone(); gk=torch.zeros_like(r); gv=torch.zeros_like(r); glw=torch.zeros_like(r)
        acc=torch.zeros(N,dtype=d)
        for t in reversed(range(T)):
            dA=(u*r[t])[:,None]*gy[t][None,:]+G
            gk[t]=dA@v[t]; gv[t]=dA.t()@k[t]
            dG=-k[t]*(G@v[t])
            if t==T-1: dG=dG+(gs*ST).sum(1)
            acc=acc+dG; glw[t]=acc; acc=acc+dE[t]
            G=r[t][:,None]*gy[t][None,:]+w[t][:,None]*G
    for n,a,b in [('r',gr,r.grad),('k',gk,k.grad),('v',gv,v.grad),('lw',glw,lw.grad),('u',gu,u.grad),('s0',G,s0.grad)]:
        err=float((a-b).abs().max()/b.abs().max()); worst=max(worst,err)
        print(T,n,err)
print('worst relative error', worst)
sys.exit(0 if worst < 1e-12 else 1)
