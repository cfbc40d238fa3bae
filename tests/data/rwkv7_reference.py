# Float64 reference for the RWKV-7 tiny model over a longer text: the equations of BlinkDL's
# official RWKV-LM/RWKV-v7/rwkv_v7_numpy.py (by johanwind), written out again in numpy, applied to
# the tensors recur converts from tiny-rwkv-7v0-834K-FP32.bin (../shared/models/rwkv-tiny).
# It reproduces the official expected logits for `"in` to 4.8e-7; tests/runtime/rwkv_test.cc
# checks recur against its logits for every byte of tests/data/rwkv7-834K.genesis.txt.
# Not needed to build or test (the output is committed). To regenerate, with Debian's numpy:
#   recur convert ../shared/models/rwkv-tiny/tiny-rwkv-7v0-834K-FP32.bin -o v7.recur
#   mkdir dump; for n in $(recur dump --list v7.recur | awk '{print $1}'); do
#     recur dump v7.recur --tensor $n --output dump/$n.npy; done
#   python3 tests/data/rwkv7_reference.py dump "$(cat tests/data/rwkv7-834K.genesis.txt)" \
#     tests/data/rwkv7-834K.genesis.expected.f32
# (embed.weight already has the model's ln0 folded in, as recur's importer stores it.)
import numpy as np, sys
D=sys.argv[1].rstrip('/')+'/'
L=lambda n: np.load(D+n+'.npy').astype(np.float64)
def ln(x,w,b,eps=1e-5): return (x-x.mean())/np.sqrt(x.var()+eps)*w+b
sig=lambda x: 1/(1+np.exp(-x))
NL=12; C=64; H=1; N=64
emb=L('embed.weight'); head=L('head.weight'); lnw=L('norm_f.weight'); lnb=L('norm_f.bias')
P=[]
for i in range(NL):
    p=lambda n,i=i: L(f'layers.{i}.{n}')
    d={k:p(k) for k in ['ln1.weight','ln1.bias','ln2.weight','ln2.bias','att.x_r','att.x_w','att.x_k','att.x_v','att.x_a','att.x_g','att.w0','att.a0','att.k_k','att.k_a','att.r_k','att.w1','att.w2','att.a1','att.a2','att.g1','att.g2','att.receptance.weight','att.key.weight','att.value.weight','att.output.weight','att.ln_x.weight','att.ln_x.bias','ffn.x_k','ffn.key.weight','ffn.value.weight']}
    if i>0:
        for k in ['att.v0','att.v1','att.v2']: d[k]=p(k)
    P.append(d)
text=sys.argv[2].encode()
S=[np.zeros((H,N,N)) for _ in range(NL)]
xa=[np.zeros(C) for _ in range(NL)]; xf=[np.zeros(C) for _ in range(NL)]
out=[]
for tok in text:
    x=emb[tok].copy()
    v_first=None
    for i,d in enumerate(P):
        xx=ln(x,d['ln1.weight'],d['ln1.bias'])
        last=xa[i]; xa[i]=xx
        mix=lambda m: xx+d[m]*(last-xx)
        r=d['att.receptance.weight']@mix('att.x_r')
        w=np.exp(-sig(d['att.w2']@np.tanh(d['att.w1']@mix('att.x_w'))+d['att.w0'])/np.e**0.5)
        k=d['att.key.weight']@mix('att.x_k')
        v=d['att.value.weight']@mix('att.x_v')
        if i==0: v_first=v.copy()
        else: v=v+(v_first-v)*sig(d['att.v2']@(d['att.v1']@mix('att.x_v'))+d['att.v0'])
        a=sig(d['att.a2']@(d['att.a1']@mix('att.x_a'))+d['att.a0'])
        g=d['att.g2']@sig(d['att.g1']@mix('att.x_g'))
        kk=k*d['att.k_k']
        k=k+k*(a-1)*d['att.k_a']
        rh,wh,kh,vh,kkh,ah=[z.reshape(H,N,1) for z in [r,w,k,v,kk,a]]
        rk=d['att.r_k'].reshape(H,N,1)
        kkh=kkh/np.maximum(np.linalg.norm(kkh,axis=1,keepdims=True),1e-12)
        S[i]=S[i]*wh.transpose(0,2,1) - (S[i]@kkh)*(kkh*ah).transpose(0,2,1) + vh*kh.transpose(0,2,1)
        y=S[i]@rh
        y=((y-y.mean(axis=1,keepdims=True))/np.sqrt(y.var(axis=1,keepdims=True)+64e-5)).flatten()*d['att.ln_x.weight']+d['att.ln_x.bias']
        y=y+((rh*kh*rk).sum(axis=1,keepdims=True)*vh).flatten()
        x=x+d['att.output.weight']@(y*g)
        xx=ln(x,d['ln2.weight'],d['ln2.bias'])
        last=xf[i]; xf[i]=xx
        kf=d['ffn.key.weight']@(xx+d['ffn.x_k']*(last-xx))
        x=x+d['ffn.value.weight']@(np.maximum(kf,0)**2)
    out.append(head@ln(x,lnw,lnb))
out=np.array(out,dtype=np.float32)
out.tofile(sys.argv[3])
# bits per byte on the text itself
lp=0.0
for t in range(len(text)-1):
    z=out[t].astype(np.float64); z-=z.max(); lp+=-(z[text[t+1]]-np.log(np.exp(z).sum()))
print('bpb', lp/np.log(2)/(len(text)-1))
